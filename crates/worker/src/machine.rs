//! `MachineStone`: a simulated cloud machine, kept as a small JSON file per machine, so that
//! tests and demos can see what a process made and what its rollback or delete removed.

use crate::{Mocked, Progress, Stone, StoneResult, Work, injected_failure};
use flowstone_engine::Action;
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Creates a "machine" record in its directory on `start`, monitors it to `running` with
/// progress (`bootSteps`, default 4, over `bootMillis`, default 400), removes it on
/// `rollback`, `delete` and `cancel`; a mock creates nothing. Failures are injected per
/// action with the `fail` param.
pub struct MachineStone {
    dir: PathBuf,
}

impl MachineStone {
    /// A stone keeping its machines in `dir` (created when needed).
    pub fn new(dir: &Path) -> Self {
        Self { dir: dir.to_owned() }
    }

    fn file(&self, id: &str) -> Result<PathBuf, String> {
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(format!("`{id}` is not a machine id"));
        }
        Ok(self.dir.join(format!("{id}.json")))
    }

    async fn write(&self, id: &str, machine: &Value) -> Result<(), String> {
        let io = |e: std::io::Error| format!("cannot record machine {id} in {}: {e}", self.dir.display());
        tokio::fs::create_dir_all(&self.dir).await.map_err(io)?;
        tokio::fs::write(self.file(id)?, machine.to_string()).await.map_err(io)
    }

    /// Removes the machine the task made, if any; answers what was removed.
    async fn remove(&self, work: &Work, action: Action) -> StoneResult {
        injected_failure(&work.params, action)?;
        let Some(id) = work.outputs.get("machineId").and_then(Value::as_str) else {
            return Ok(Map::new()); // the start failed before making one
        };
        match tokio::fs::remove_file(self.file(id)?).await {
            Ok(()) => Ok(Map::from_iter([("removed".to_owned(), json!(id))])),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Ok(Map::from_iter([("removed".to_owned(), Value::Null)]))
            }
            Err(e) => Err(format!("cannot remove machine {id}: {e}")),
        }
    }
}

#[async_trait::async_trait]
impl Stone for MachineStone {
    fn name(&self) -> &str {
        "MachineStone"
    }

    fn summary(&self) -> &str {
        "Makes a simulated machine, watches it boot until it runs, and removes it on rollback, cancel or delete."
    }

    fn monitors(&self) -> bool {
        true
    }

    async fn start(&self, work: &Work) -> StoneResult {
        injected_failure(&work.params, Action::Start)?;
        let id = uuid::Uuid::new_v4();
        let bytes = id.as_bytes();
        let outputs = Map::from_iter([
            ("machineId".to_owned(), json!(id.to_string())),
            ("ip".to_owned(), json!(format!("10.{}.{}.{}", bytes[0], bytes[1], bytes[2].max(1)))),
            ("instanceType".to_owned(), work.params.get("instanceType").cloned().unwrap_or(json!("m2.medium"))),
            ("state".to_owned(), json!("creating")),
        ]);
        self.write(&id.to_string(), &Value::Object(outputs.clone())).await?;
        Ok(outputs)
    }

    async fn monitor(&self, work: &Work, progress: &dyn Progress) -> StoneResult {
        let id = work.outputs.get("machineId").and_then(Value::as_str).ok_or("no machineId to monitor")?;
        let file = self.file(id)?;
        let number = |key: &str, default: u64| work.params.get(key).and_then(Value::as_u64).unwrap_or(default);
        let steps = number("bootSteps", 4).clamp(1, 100);
        let pause = Duration::from_millis(number("bootMillis", 400) / steps);
        for step in 1..=steps {
            tokio::time::sleep(pause).await;
            if !tokio::fs::try_exists(&file).await.unwrap_or(false) {
                return Err(format!("machine {id} is gone"));
            }
            progress.progress((step * 100 / steps) as u8).await;
        }
        injected_failure(&work.params, Action::Monitor)?;
        let mut machine = work.outputs.clone();
        machine.insert("state".into(), json!("running"));
        self.write(id, &Value::Object(machine)).await?;
        Ok(Map::from_iter([("state".to_owned(), json!("running"))]))
    }

    async fn rollback(&self, work: &Work) -> StoneResult {
        self.remove(work, Action::Rollback).await
    }

    async fn cancel(&self, work: &Work) -> StoneResult {
        self.remove(work, Action::Cancel).await
    }

    async fn delete(&self, work: &Work) -> StoneResult {
        self.remove(work, Action::Delete).await
    }

    async fn mock(&self, work: &Work) -> Result<Mocked, String> {
        injected_failure(&work.params, Action::Mock)?;
        Ok(Mocked::Success(Map::from_iter([
            ("machineId".to_owned(), json!(format!("mock-{}", uuid::Uuid::new_v4()))),
            ("ip".to_owned(), json!("0.0.0.0")),
            ("state".to_owned(), json!("mocked")),
        ])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Silent;

    #[async_trait::async_trait]
    impl Progress for Silent {
        async fn progress(&self, _: u8) {}
    }

    fn machines(dir: &Path) -> usize {
        std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
    }

    #[tokio::test]
    async fn a_machine_is_made_monitored_to_running_and_removed_by_rollback() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let stone = MachineStone::new(dir.path());
        let params = json!({"instanceType": "m2.large", "bootMillis": 10});
        let outputs = stone
            .start(&Work { params: params.clone(), outputs: Map::new(), queued_at: None })
            .await
            .unwrap_or_default();
        assert_eq!(outputs["instanceType"], json!("m2.large"));
        assert_eq!(machines(dir.path()), 1);
        let work = Work { params, outputs, queued_at: None };
        assert_eq!(stone.monitor(&work, &Silent).await.map(|o| o["state"].clone()), Ok(json!("running")));
        assert!(stone.rollback(&work).await.is_ok());
        assert_eq!(machines(dir.path()), 0);
        assert!(stone.delete(&work).await.is_ok(), "removing twice is harmless");
    }

    #[tokio::test]
    async fn a_canceled_machine_fails_its_monitor_and_a_mock_makes_none() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let stone = MachineStone::new(dir.path());
        let params = json!({"bootMillis": 200});
        let outputs = stone
            .start(&Work { params: params.clone(), outputs: Map::new(), queued_at: None })
            .await
            .unwrap_or_default();
        let work = Work { params, outputs, queued_at: None };
        let (watched, canceled) = tokio::join!(stone.monitor(&work, &Silent), stone.cancel(&work));
        assert!(canceled.is_ok());
        assert!(watched.is_err_and(|e| e.contains("gone")));
        assert!(matches!(stone.mock(&work).await, Ok(Mocked::Success(_))));
        assert_eq!(machines(dir.path()), 0);
    }
}
