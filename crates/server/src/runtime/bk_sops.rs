//! bk-sops templates and tasks as [records](super::records) the committer writes: a template
//! with the model of its tree, a task with the model of its own it may need, a start, an edit
//! of a task not started — each what its caller asked for in one commit
//! (`create_and_start_task` included), so that no failure leaves a model without its template
//! or a task half started. "A task starts once" and "a started task takes no edit" are checked
//! where the start or edit is applied, against those committed and those on their way; a start
//! runs the task as last edited.

use super::records::{Records, model_of};
use super::{Runtime, RuntimeError};
use flowstone_engine::StartOptions;
use flowstone_model::{Definition, constant_variable};
use flowstone_store::{BkIds, BkTaskEdit, BkTaskRow, ModelRow, TemplateRow};
use serde_json::{Map, Value};
use std::sync::Arc;

/// A task's start: its instance runs the task's model with the task's constants and name
/// as they are when the start is applied.
#[derive(Clone)]
pub(super) struct BkStart {
    /// The task.
    pub(super) task: i64,
    /// Its model.
    pub(super) model: Arc<ModelRow>,
    /// The model's definition.
    pub(super) def: Arc<Definition>,
    /// Who starts it.
    pub(super) executor: String,
}

impl BkStart {
    /// The instance's business key, by which the task is found from its instance.
    pub(super) fn business_key(&self) -> String {
        format!("bk-sops-task-{}", self.task)
    }

    /// As in bk-sops, a failed node waits for an operator (retry, skip) instead of ending the
    /// task.
    pub(super) fn options(&self) -> StartOptions {
        StartOptions { initiator: Some(self.executor.clone()), debug: true, ..StartOptions::default() }
    }
}

/// A task's constants (JSON of `{"${KEY}": value}`) as process variables.
pub(super) fn task_variables(constants: &str) -> Map<String, Value> {
    let constants: Map<String, Value> = serde_json::from_str(constants).unwrap_or_default();
    constants.into_iter().map(|(k, v)| (constant_variable(&k).to_owned(), v)).collect()
}

/// A task a periodic or clocked task makes: of its template, named after it and the time
/// (`<name>_<YYYYmmddHHMMSS>`, as bk-sops names them), made and started by its creator.
pub(super) struct PlannedTask<'a> {
    /// The business.
    pub(super) biz_id: i64,
    /// The template.
    pub(super) template_id: i64,
    /// The name the task is named after.
    pub(super) name: &'a str,
    /// Who makes and starts it.
    pub(super) creator: &'a str,
    /// The model it runs.
    pub(super) model_id: &'a str,
    /// Its constants, as JSON (`{"${KEY}": value}`).
    pub(super) constants: String,
    /// `periodic` or `clocked`.
    pub(super) create_method: &'static str,
}

/// The refusal of a second start.
pub(super) fn started_already(task: i64) -> RuntimeError {
    RuntimeError::Exists(format!("task {task} has been started already"))
}

/// A pipeline tree (subprocesses inlined, see [`flowstone_model::inline_subprocesses`]) to
/// store as a model of key `key`.
pub struct Tree<'a> {
    /// The tree.
    pub tree: &'a Value,
    /// The model's key (the tree's `pipeline_template_id`).
    pub key: &'a str,
    /// The model's name.
    pub name: &'a str,
}

/// A model key for a tree that brings none, shaped like bk-sops' pipeline template ids.
pub fn pipeline_key() -> String {
    format!("n{}", &uuid::Uuid::new_v4().simple().to_string()[..31])
}

impl Runtime {
    /// Checks a tree and stores it as a model in a deployment of its own.
    ///
    /// # Errors
    /// [`RuntimeError::Model`] naming the node at fault, or a store failure.
    pub async fn deploy_pipeline(&self, tree: &Value, key: &str, name: &str) -> Result<ModelRow, RuntimeError> {
        let (deployment, row, def) = model_of(&Tree { tree, key, name })?;
        self.write_records(Records { deployments: vec![deployment], ..Records::default() }).await?;
        self.committed_model(&row.id, def).await
    }

    /// Stores templates, each with the model of its tree, in one commit; answers them with
    /// their ids.
    ///
    /// # Errors
    /// [`RuntimeError::Model`] naming the tree and node at fault (nothing is stored then), or a
    /// store failure.
    pub async fn create_templates(&self, made: Vec<(Tree<'_>, TemplateRow)>) -> Result<Vec<TemplateRow>, RuntimeError> {
        let mut write = Records::default();
        let mut defs = Vec::new();
        for (tree, mut template) in made {
            let (deployment, row, def) = model_of(&tree)?;
            template.id = self.store.reserve_id(BkIds::Templates).await?;
            template.model_id.clone_from(&row.id);
            template.pipeline_template_id = tree.key.to_owned();
            write.deployments.push(deployment);
            write.templates.push(template);
            defs.push((row.id.clone(), def));
        }
        let templates = write.templates.clone();
        self.write_records(write).await?;
        for (id, def) in defs {
            self.committed_model(&id, def).await?;
        }
        Ok(templates)
    }

    /// Stores a task (with a model of its own when `tree` is given, else of `task.model_id`),
    /// started by `executor` in the same commit when one is given; answers it with its id.
    ///
    /// # Errors
    /// [`RuntimeError::Model`] for a tree at fault, [`RuntimeError::NotValid`] for constants
    /// past the bounds of [`flowstone_engine::Limits`], or a store failure.
    pub async fn create_bk_task(
        &self,
        tree: Option<Tree<'_>>,
        mut task: BkTaskRow,
        executor: Option<String>,
    ) -> Result<BkTaskRow, RuntimeError> {
        let mut write = Records::default();
        let own = tree.as_ref().map(model_of).transpose()?;
        task.id = self.store.reserve_id(BkIds::Tasks).await?;
        let model = match &own {
            Some((deployment, row, def)) => {
                write.deployments.push(deployment.clone());
                task.model_id.clone_from(&row.id);
                Some((row.clone(), def.clone()))
            }
            None => None,
        };
        if let Some(executor) = executor {
            write.start = Some(self.bk_start(&task, model, executor).await?);
        }
        write.task = Some(task.clone());
        self.write_records(write).await?;
        if let Some((_, row, def)) = own {
            self.committed_model(&row.id, def).await?;
        }
        Ok(task)
    }

    /// Starts a task created before, as `executor`.
    ///
    /// # Errors
    /// [`RuntimeError::Exists`] when it started already (also meanwhile, or on another server),
    /// or as [`Runtime::create_bk_task`].
    pub async fn start_bk_task(&self, task: &BkTaskRow, executor: String) -> Result<(), RuntimeError> {
        if task.instance_id.is_some() {
            return Err(started_already(task.id));
        }
        let start = self.bk_start(task, None, executor).await?;
        self.write_records(Records { start: Some(start), ..Records::default() }).await
    }

    /// The start of `task`, of `model` (else the task's stored model).
    async fn bk_start(
        &self,
        task: &BkTaskRow,
        model: Option<(Arc<ModelRow>, Arc<Definition>)>,
        executor: String,
    ) -> Result<BkStart, RuntimeError> {
        let (model, def) = match model {
            Some(found) => found,
            None => {
                let model = self
                    .model(&task.model_id)
                    .await?
                    .ok_or_else(|| RuntimeError::NotValid(format!("the model of task {} is gone", task.id)))?;
                let def = self.definition(&model)?;
                (model, def)
            }
        };
        self.limits.check_variables(&task_variables(&task.constants)).map_err(RuntimeError::NotValid)?;
        Ok(BkStart { task: task.id, model, def, executor })
    }

    /// The task a periodic or clocked task makes now, and its start; its id is reserved.
    ///
    /// # Errors
    /// [`RuntimeError::NotValid`] when the model is gone or the constants are past the bounds
    /// of [`flowstone_engine::Limits`], or a store failure.
    pub(super) async fn planned_task(&self, p: PlannedTask<'_>) -> Result<(BkTaskRow, BkStart), RuntimeError> {
        let now = super::now_ms();
        let stamp = jiff::Timestamp::from_millisecond(now).map(|t| t.strftime("%Y%m%d%H%M%S").to_string());
        let task = BkTaskRow {
            id: self.store.reserve_id(BkIds::Tasks).await?,
            biz_id: p.biz_id,
            template_id: Some(p.template_id),
            name: format!("{}_{}", p.name.chars().take(113).collect::<String>(), stamp.unwrap_or_default()),
            creator: p.creator.to_owned(),
            executor: None,
            model_id: p.model_id.to_owned(),
            instance_id: None,
            constants: p.constants,
            create_method: p.create_method.into(),
            flow_type: "common".into(),
            created_at: now,
            started_at: None,
        };
        let start = self.bk_start(&task, None, p.creator.to_owned()).await?;
        Ok((task, start))
    }

    /// Renames a task that has not started and sets its constants.
    ///
    /// # Errors
    /// [`RuntimeError::Exists`] when it started already (also meanwhile, or on another server),
    /// [`RuntimeError::NotValid`] for constants past the bounds of
    /// [`flowstone_engine::Limits`], or a store failure.
    pub async fn edit_bk_task(&self, edit: BkTaskEdit) -> Result<(), RuntimeError> {
        self.limits.check_variables(&task_variables(&edit.constants)).map_err(RuntimeError::NotValid)?;
        self.write_records(Records { edit: Some(edit), ..Records::default() }).await
    }
}
