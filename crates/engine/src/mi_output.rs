//! A multi-instance activity's output collection (`loopDataOutputRef` with
//! `outputDataItem`): a list in the scope around the activity, one place per item, null until
//! that item completes with its value of the output item variable. Each item has its own
//! output variable, unset (null) when it starts, so that what sets it sets it for the item.

use crate::instance::Instance;
use crate::scope::ScopeId;
use flowstone_model::MultiInstance;
use serde_json::{Map, Value};

impl Instance {
    /// A multi-instance activity of `total` items starts in `scope`: its output collection,
    /// all nulls.
    pub(crate) fn open_output(&mut self, mi: &MultiInstance, scope: Option<ScopeId>, total: u32) {
        if let Some(out) = &mi.output {
            self.set_var(scope, out.collection.clone(), Value::Array(vec![Value::Null; total as usize]));
        }
    }

    /// Item `index` completed with its own variables `vars`: its output goes to its place in
    /// the collection of the scope around the activity (`outer`).
    pub(crate) fn collect_output(
        &mut self,
        mi: &MultiInstance,
        outer: Option<ScopeId>,
        index: u32,
        vars: &Map<String, Value>,
    ) {
        let Some(out) = &mi.output else { return };
        let value = vars.get(&out.item).cloned().unwrap_or(Value::Null);
        let holder = self.holder(outer, &out.collection);
        if let Some(Value::Array(list)) = holder.get_mut(&out.collection)
            && let Some(place) = list.get_mut(index as usize)
        {
            *place = value;
        }
    }
}

/// The variables an item starts with get its output variable, unset.
pub(crate) fn item_output(mi: &MultiInstance, vars: &mut Map<String, Value>) {
    if let Some(out) = &mi.output {
        vars.entry(out.item.clone()).or_insert(Value::Null);
    }
}
