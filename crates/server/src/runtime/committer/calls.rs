//! Call activities in a group: the children callers asked for start in the same commit as the
//! call, and a child that ends tells its caller in the same commit as its end; a call that
//! closed early (a boundary event, a cancel of the caller) cancels its child. All of it loops
//! until nothing more is asked, within one group, so a chain of calls lands whole or not at all.
//! A deleted caller deletes its children in the same commit.

use super::{Committer, Prepared};
use crate::runtime::now_ms;
use flowstone_engine::{Call, CallEnd, Caller, Command, StartOptions};
use flowstone_model::Binding;
use flowstone_store::{ModelQuery, ModelRow, Page, TenantFilter, TextFilter};

/// The most children one group starts: a model that calls a process which ends at once, in a
/// loop without a wait state, fails its call here instead of starting children without end.
const MAX_CALLS_PER_GROUP: usize = 1_000;

/// What the group's instances asked of and told each other, not yet carried out.
#[derive(Default)]
pub(super) struct Calls {
    /// Children to start.
    pub(super) asked: Vec<Asked>,
    /// Children that ended, for their callers.
    pub(super) returns: Vec<(Caller, CallEnd)>,
    /// Children whose call closed before they ended: canceled.
    pub(super) ended: Vec<String>,
    /// Children of a deleted caller: deleted with it.
    pub(super) deleted: Vec<String>,
}

/// A call activity's child to start, with what it takes from its caller.
pub(super) struct Asked {
    /// The caller's model (a call bound to its deployment looks there).
    pub(super) model_id: String,
    /// The caller's tenant: the child runs a model of it, else one of no tenant.
    pub(super) tenant: Option<String>,
    /// The caller's business key, for a call that inherits it.
    pub(super) business_key: Option<String>,
    /// Who started the caller: the child's initiator too.
    pub(super) start_user: Option<String>,
    pub(super) caller: Caller,
    pub(super) call: Call,
}

impl Committer {
    /// Carries out what the group's calls asked, until they ask nothing more.
    pub(super) async fn settle_calls(&mut self, into: &mut Prepared) {
        let mut started = 0;
        loop {
            let Calls { asked, returns, ended, deleted } = std::mem::take(&mut into.calls);
            if asked.is_empty() && returns.is_empty() && ended.is_empty() && deleted.is_empty() {
                return;
            }
            let now = now_ms();
            for asked in asked {
                let caller = asked.caller.clone();
                started += 1;
                let begun = if started > MAX_CALLS_PER_GROUP {
                    Err(format!(
                        "could not start: more than {MAX_CALLS_PER_GROUP} called instances in one go (does the model loop without a wait state?)"
                    ))
                } else {
                    self.start_call(asked, into, now).await
                };
                if let Err(reason) = begun {
                    into.calls.returns.push((caller, CallEnd::Failed(reason)));
                }
            }
            // A caller that moved on (its call closed, or it ended) is not told: it is
            // refused as not waiting, which is right.
            for (caller, end) in returns {
                let command = Command::Return { record: caller.record, end };
                if let Err(e) = self.apply_to(&caller.instance, command, Some(&mut *into), now).await {
                    tracing::debug!(caller = %caller.instance, "a called instance's end was not taken: {e}");
                }
            }
            for child in ended {
                if let Err(e) = self.apply_to(&child, Command::Cancel, Some(&mut *into), now).await {
                    tracing::debug!(%child, "a called instance was not canceled with its call: {e}");
                }
            }
            // One deleted already (on its own) is left as it is.
            for child in deleted {
                if let Err(e) = self.apply_to(&child, Command::Delete, Some(&mut *into), now).await {
                    tracing::debug!(%child, "a called instance was not deleted with its caller: {e}");
                }
            }
        }
    }

    /// Starts the child a call asked for; why it could not.
    async fn start_call(&mut self, asked: Asked, into: &mut Prepared, now: i64) -> Result<(), String> {
        let Asked { model_id, tenant, business_key, start_user, caller, call } = asked;
        let model = self.called_model(&call, &model_id, tenant.as_deref()).await?;
        let def = self.runtime.definition(&model).map_err(|e| format!("could not start: {e}"))?;
        let key = call.business_key.or(business_key.filter(|_| call.inherit_business_key));
        let options = StartOptions { initiator: start_user, caller: Some(caller), ..StartOptions::default() };
        let name = model.name.clone().unwrap_or_else(|| model.key.clone());
        self.begin(call.child, &model, def, name, key, call.variables, &options, into, now);
        Ok(())
    }

    /// The model a call starts: of the caller's tenant, else of none; bound to the caller's
    /// deployment, else the newest version; or the version it names.
    async fn called_model(&self, call: &Call, caller_model: &str, tenant: Option<&str>) -> Result<ModelRow, String> {
        let failed = |e: String| format!("could not start: {e}");
        let base = ModelQuery {
            key: TextFilter { equals: Some(call.key.clone()), like: None },
            latest: true,
            ..ModelQuery::default()
        };
        let mut bound = Vec::new();
        match &call.binding {
            Binding::Latest => {}
            Binding::Deployment => {
                let caller = self.runtime.model(caller_model).await.map_err(|e| failed(e.to_string()))?;
                let deployment_id = caller.map(|m| m.deployment_id.clone());
                bound.push(ModelQuery { deployment_id, latest: false, ..base.clone() });
            }
            Binding::Version(version) => {
                bound.push(ModelQuery { version: Some(*version), latest: false, ..base.clone() })
            }
        }
        if !matches!(call.binding, Binding::Version(_)) {
            bound.push(base);
        }
        // The caller's tenant first, then none (the same when the caller has none).
        let tenants: &[Option<&str>] = if tenant.is_some() { &[tenant, None] } else { &[None] };
        for query in &bound {
            for of in tenants {
                let tenant = TenantFilter {
                    tenant: TextFilter { equals: of.map(str::to_owned), like: None },
                    without: of.is_none(),
                };
                let query = ModelQuery { tenant, ..query.clone() };
                let page = Page { offset: 0, limit: 1 };
                let (found, _) = self.store.query_models(&query, page).await.map_err(|e| failed(e.to_string()))?;
                if let Some(model) = found.into_iter().next() {
                    return Ok(model);
                }
            }
        }
        let version = match call.binding {
            Binding::Version(v) => format!(" in version {v}"),
            _ => String::new(),
        };
        Err(format!("could not start: no process of key `{}`{version} is deployed", call.key))
    }
}
