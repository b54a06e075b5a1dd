//! `get_user_project_list` and `get_user_project_detail`: a bk-sops project is a business
//! here, named by its id (`project_id` = `bk_biz_id`), with no CMDB behind it.

use super::Call;
use crate::error::ApiError;
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

/// A project in a list (`get_user_project_list`).
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Project {
    pub(super) project_id: i64,
    pub(super) bk_biz_id: i64,
    pub(super) name: String,
}

/// A project (`get_user_project_detail`).
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ProjectDetail {
    pub(super) project_id: i64,
    pub(super) project_name: String,
    pub(super) bk_biz_id: i64,
    /// Always false: no CMDB stands behind a business here.
    pub(super) from_cmdb: bool,
    pub(super) bk_biz_name: String,
    pub(super) bk_biz_developer: String,
    pub(super) bk_biz_maintainer: String,
    pub(super) bk_biz_tester: String,
    pub(super) bk_biz_productor: String,
}

/// The businesses the app may reach: those it is limited to, else every business that has a
/// template or a task.
pub(super) async fn project_list(c: &Call<'_>) -> Result<Value, ApiError> {
    let ids: Vec<i64> = match &c.businesses {
        Some(allowed) => {
            let mut ids: Vec<i64> = allowed.iter().filter_map(|b| b.parse().ok()).collect();
            ids.sort_unstable();
            ids
        }
        None => c.rt.store().bk_businesses().await?,
    };
    Ok(json!(ids.iter().map(|&id| Project { project_id: id, bk_biz_id: id, name: id.to_string() }).collect::<Vec<_>>()))
}

/// The business `bk_biz_id` (the gate checked the app may reach it).
pub(super) fn project_detail(c: &Call<'_>) -> Result<Value, ApiError> {
    let id = c.number("bk_biz_id").or_else(|_| c.number("project_id"))?;
    Ok(json!(ProjectDetail {
        project_id: id,
        project_name: id.to_string(),
        bk_biz_id: id,
        from_cmdb: false,
        bk_biz_name: id.to_string(),
        bk_biz_developer: String::new(),
        bk_biz_maintainer: String::new(),
        bk_biz_tester: String::new(),
        bk_biz_productor: String::new(),
    }))
}
