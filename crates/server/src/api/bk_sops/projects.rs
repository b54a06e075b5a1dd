//! `get_user_project_list` and `get_user_project_detail`: a bk-sops project is a business
//! here, named by its id (`project_id` = `bk_biz_id`), with no CMDB behind it.

use super::Call;
use crate::error::ApiError;
use serde_json::{Value, json};

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
    Ok(ids.iter().map(|id| json!({"project_id": id, "bk_biz_id": id, "name": id.to_string()})).collect())
}

/// The business `bk_biz_id` (the gate checked the app may reach it).
pub(super) fn project_detail(c: &Call<'_>) -> Result<Value, ApiError> {
    let id = c.number("bk_biz_id").or_else(|_| c.number("project_id"))?;
    Ok(json!({
        "project_id": id,
        "project_name": id.to_string(),
        "bk_biz_id": id,
        "from_cmdb": false,
        "bk_biz_name": id.to_string(),
        "bk_biz_developer": "",
        "bk_biz_maintainer": "",
        "bk_biz_tester": "",
        "bk_biz_productor": "",
    }))
}
