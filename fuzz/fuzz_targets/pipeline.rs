//! Any JSON given as a bk-sops pipeline tree is parsed or refused, and so is leaving any of its
//! nodes out (what `preview_task_tree` does); nothing panics.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let Ok(tree) = serde_json::from_slice::<serde_json::Value>(bytes) else { return };
    let _ = flowstone_model::parse_pipeline(&tree, "fuzz", None, &|_| None);
    let _ = flowstone_model::inline_subprocesses(&tree, &|_| Some(tree.clone()));
    let ids: Vec<String> = tree
        .get("activities")
        .and_then(serde_json::Value::as_object)
        .map(|a| a.keys().take(2).cloned().collect())
        .unwrap_or_default();
    let _ = flowstone_model::exclude_nodes(&tree, &ids);
});
