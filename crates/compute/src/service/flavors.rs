//! Flavors: visibility (public, or private with project access), creation
//! by admins, extra specs.

use super::ComputeService;
use crate::store::{self, catalog::Flavor};
use ferrostack_core::auth::AuthContext;
use ferrostack_core::{Error, Result};

pub fn flavor_not_found(id: &str) -> Error {
    Error::NotFound(format!("Flavor {id} could not be found."))
}

impl ComputeService {
    /// A flavor the caller may use: public, granted to its project, or any for admins.
    pub async fn visible_flavor(&self, ctx: &AuthContext, id: &str) -> Result<Flavor> {
        let f = store::catalog::get_flavor(&self.db, id)
            .await?
            .ok_or_else(|| flavor_not_found(id))?;
        if f.is_public || self.is_admin(ctx) {
            return Ok(f);
        }
        let projects = store::catalog::flavor_projects(&self.db, id).await?;
        if ctx
            .project_id
            .as_ref()
            .is_some_and(|p| projects.contains(p))
        {
            Ok(f)
        } else {
            Err(flavor_not_found(id))
        }
    }

    /// Flavors as Nova lists them: `is_public` true (default) gives public
    /// flavors plus, for a project, the private ones it was granted; false
    /// gives private ones; `None` ("none") gives all (admins).
    pub async fn list_flavors(
        &self,
        ctx: &AuthContext,
        is_public: Option<bool>,
    ) -> Result<Vec<Flavor>> {
        let all = store::catalog::list_flavors(&self.db).await?;
        let mut out = Vec::new();
        for f in all {
            let granted = match &ctx.project_id {
                Some(p) if !f.is_public => store::catalog::flavor_projects(&self.db, &f.id)
                    .await?
                    .contains(p),
                _ => false,
            };
            let keep = if self.is_admin(ctx) {
                match is_public {
                    None => true,
                    Some(want) => f.is_public == want || (want && granted),
                }
            } else {
                match is_public {
                    Some(false) => !f.is_public && granted,
                    _ => f.is_public || granted,
                }
            };
            if keep {
                out.push(f);
            }
        }
        Ok(out)
    }

    pub async fn create_flavor(&self, f: Flavor) -> Result<Flavor> {
        if store::catalog::get_flavor(&self.db, &f.id).await?.is_some() {
            return Err(Error::Conflict(format!(
                "Flavor with ID {} already exists.",
                f.id
            )));
        }
        if store::catalog::list_flavors(&self.db)
            .await?
            .iter()
            .any(|x| x.name == f.name)
        {
            return Err(Error::Conflict(format!(
                "Flavor with name {} already exists.",
                f.name
            )));
        }
        store::catalog::insert_flavor(&self.db, &f).await?;
        Ok(f)
    }
}
