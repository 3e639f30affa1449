//! The attributes each resource kind's create and update bodies may carry:
//! one table per kind, beside the code that applies them. The service
//! refuses any other attribute with them ([`super::check_known`]) and the
//! OpenAPI document describes the bodies from them, so the two cannot drift.

use crate::store::Kind;

/// The JSON type the service takes for an attribute; `Open` where it takes
/// more than one (a protocol is a name or a number).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttrType {
    Str,
    Bool,
    Int,
    Array,
    Object,
    Open,
}

/// Which bodies carry an attribute, and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttrUse {
    /// Every create must give it.
    Required,
    /// A create may give it; an update accepts it only unchanged, or ignores it.
    CreateOnly,
    /// A create may give it and an update changes it.
    Updatable,
}

/// One attribute of a resource's body.
#[derive(Clone, Copy, Debug)]
pub struct Attribute {
    pub name: &'static str,
    pub ty: AttrType,
    pub usage: AttrUse,
    /// `null` is taken too (no gateway, disassociate, the default).
    pub nullable: bool,
}

impl Attribute {
    pub const fn required(name: &'static str, ty: AttrType) -> Self {
        Attribute {
            name,
            ty,
            usage: AttrUse::Required,
            nullable: false,
        }
    }

    pub const fn create_only(name: &'static str, ty: AttrType) -> Self {
        Attribute {
            name,
            ty,
            usage: AttrUse::CreateOnly,
            nullable: false,
        }
    }

    pub const fn updatable(name: &'static str, ty: AttrType) -> Self {
        Attribute {
            name,
            ty,
            usage: AttrUse::Updatable,
            nullable: false,
        }
    }

    /// The same attribute, also taking `null`.
    pub const fn or_null(self) -> Self {
        Attribute {
            nullable: true,
            ..self
        }
    }
}

/// Attributes every resource accepts, beside its own.
const COMMON: &[Attribute] = &[
    Attribute::updatable("name", AttrType::Str).or_null(),
    Attribute::updatable("description", AttrType::Str).or_null(),
    Attribute::create_only("tenant_id", AttrType::Str),
    Attribute::create_only("project_id", AttrType::Str),
    Attribute::create_only("tags", AttrType::Array),
];

/// Every attribute a body of `kind` may carry: the common ones, then its own.
pub fn attributes(kind: Kind) -> impl Iterator<Item = &'static Attribute> {
    let own: &'static [Attribute] = match kind {
        Kind::Network => super::networks::ATTRIBUTES,
        Kind::Subnet => super::subnets::ATTRIBUTES,
        Kind::Port => super::ports::ATTRIBUTES,
        Kind::Router => super::routers::ROUTER_ATTRIBUTES,
        Kind::FloatingIp => super::routers::FLOATINGIP_ATTRIBUTES,
        Kind::SecurityGroup => super::security_groups::GROUP_ATTRIBUTES,
        Kind::SecurityGroupRule => super::security_groups::RULE_ATTRIBUTES,
        Kind::Agent => super::agents::ATTRIBUTES,
        Kind::Quota => &[],
    };
    COMMON.iter().chain(own)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_kind_names_an_attribute_twice() {
        for kind in [
            Kind::Network,
            Kind::Subnet,
            Kind::Port,
            Kind::Router,
            Kind::FloatingIp,
            Kind::SecurityGroup,
            Kind::SecurityGroupRule,
            Kind::Agent,
        ] {
            let mut names: Vec<&str> = attributes(kind).map(|a| a.name).collect();
            let all = names.len();
            names.sort();
            names.dedup();
            assert_eq!(names.len(), all, "{kind:?}");
        }
    }
}
