//! The bk-sops API's part of the OpenAPI document: an operation per API name bk-sops
//! documents, its parameters, and its answer in bk-sops' envelope with `data` of the API's
//! type (those not served answer code 3545100, and say why).

use super::answers::{
    Imported, NodeDetail, Preview, TaskDetail, TaskListed, TaskMade, TaskStatusOf, Template, TemplateInfo, TemplateMade,
};
use super::clocked::Clocked;
use super::counts::TaskCounts;
use super::effective_time::EffectiveTime;
use super::intervention::Intervention;
use super::periodic::Periodic;
use super::plugins::{Plugin, PluginBase};
use super::projects::{Project, ProjectDetail};
use super::status::StateTree;
use super::{BASE, Envelope, NOT_SERVED};
use utoipa::ToSchema;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{AllOfBuilder, ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{Components, ContentBuilder, OpenApi, OpenApiBuilder, Paths, Ref, RefOr, Required};

/// What a parameter holds.
#[derive(Clone, Copy)]
enum Kind {
    /// Text.
    Text,
    /// A number (or text holding one).
    Id,
    /// A JSON object (or text holding one).
    Json,
    /// A list (or text holding a JSON list).
    List,
    /// `true` or `false`.
    Flag,
}

/// A parameter: its name, what it holds, whether it is required, what it is.
type Param = (&'static str, Kind, bool, &'static str);

/// What `data` holds.
type Data = fn(&mut Components) -> RefOr<Schema>;

const BIZ: Param = ("bk_biz_id", Kind::Id, true, "The business (`project_id` serves too)");
const TEMPLATE: Param = ("template_id", Kind::Id, true, "The template");
const TASK: Param = ("task_id", Kind::Id, true, "The task");
const NODE: Param = ("node_id", Kind::Text, true, "The node (an activity of the tree)");
const TREE: Param = ("pipeline_tree", Kind::Json, true, "A pipeline tree");
const CONSTANTS: Param = ("constants", Kind::Json, false, "`{\"${KEY}\": value}`");
const NAME: Param = ("name", Kind::Text, true, "Its name");
const TASK_IDS: Param = ("task_id_list", Kind::List, true, "Task ids");
const EXCLUDE: Param = ("exclude_task_nodes_id", Kind::List, false, "Optional nodes to leave out");
const EXECUTE: Param =
    ("execute_task_nodes_id", Kind::List, false, "The nodes to run (other optional ones are left out)");
const FLOW_TYPE: Param = ("flow_type", Kind::Text, false, "`common` (default) or `common_func`");
const CRON: Param = (
    "cron",
    Kind::Json,
    true,
    "`{minute, hour, day_of_week, day_of_month, month_of_year}`, each Celery crontab text (default `*`)",
);
const EDIT_INFO: Param = ("include_edit_info", Kind::Flag, false, "With editor, edit_time and is_latest");
const TEMPLATE_DATA: Param =
    ("template_data", Kind::Text, true, "A bk-sops export: JSON or YAML, as text, base64 or an object");

/// Every API served: its name, what it does, its parameters and its `data`.
const SERVED: &[(&str, &str, &[Param], Data)] = &[
    (
        "create_template",
        "Makes a template of a pipeline tree",
        &[BIZ, NAME, TREE, ("description", Kind::Text, false, "")],
        one::<TemplateMade>,
    ),
    ("import", "Imports the templates of a bk-sops export", &[BIZ, TEMPLATE_DATA], one::<Imported>),
    ("import_project_template", "`import` under bk-sops' name", &[BIZ, TEMPLATE_DATA], one::<Imported>),
    ("get_template_list", "A business's templates", &[BIZ], list::<Template>),
    ("get_template_info", "A template with its tree", &[BIZ, TEMPLATE], one::<TemplateInfo>),
    (
        "preview_task_tree",
        "The tree a task of the template would run",
        &[BIZ, TEMPLATE, EXCLUDE, EXECUTE],
        one::<Preview>,
    ),
    (
        "create_task",
        "Makes a task of a template (or of a raw tree)",
        &[BIZ, TEMPLATE, NAME, CONSTANTS, FLOW_TYPE, EXCLUDE, EXECUTE],
        one::<TaskMade>,
    ),
    ("fast_create_task", "Makes a task of a raw tree", &[BIZ, NAME, TREE, CONSTANTS, FLOW_TYPE], one::<TaskMade>),
    (
        "create_and_start_task",
        "Makes a task and starts it, in one commit",
        &[BIZ, TEMPLATE, NAME, CONSTANTS, FLOW_TYPE, EXCLUDE, EXECUTE],
        one::<TaskMade>,
    ),
    ("start_task", "Starts a task (refused with 3545000 when it started already)", &[BIZ, TASK], object),
    (
        "modify_constants_for_task",
        "Gives a task not started other constants and a name",
        &[BIZ, TASK, CONSTANTS, ("name", Kind::Text, false, "Its new name")],
        text,
    ),
    (
        "operate_task",
        "Starts, pauses, resumes or revokes a task",
        &[BIZ, TASK, ("action", Kind::Text, true, "`start`, `pause`, `resume` or `revoke`")],
        object,
    ),
    (
        "get_task_status",
        "A task's state tree",
        &[
            BIZ,
            TASK,
            (
                "with_failed_node_info",
                Kind::Flag,
                false,
                "Adds `failed_node_info`: failed nodes and their automatic retries",
            ),
            (
                "with_auto_retry_status",
                Kind::Flag,
                false,
                "Adds `auto_retry_status`: the failed nodes still to be retried",
            ),
        ],
        one::<StateTree>,
    ),
    ("get_tasks_status", "The state trees of tasks", &[BIZ, TASK_IDS], list::<TaskStatusOf>),
    ("get_task_detail", "A task with its tree, constants and outputs", &[BIZ, TASK], one::<TaskDetail>),
    (
        "get_task_list",
        "A business's tasks, newest first, with `count` beside `data`",
        &[
            BIZ,
            ("keyword", Kind::Text, false, "In the name"),
            ("is_started", Kind::Flag, false, ""),
            ("is_finished", Kind::Flag, false, ""),
            ("limit", Kind::Id, false, "1 to 200 (100)"),
            ("offset", Kind::Id, false, ""),
        ],
        list::<TaskListed>,
    ),
    (
        "query_task_count",
        "A business's tasks counted by a dimension",
        &[
            BIZ,
            ("group_by", Kind::Text, true, "`status`, `category`, `create_method` or `flow_type`"),
            ("conditions", Kind::Json, false, "Filters of the tasks counted"),
        ],
        one::<TaskCounts>,
    ),
    ("get_tasks_manual_intervention_state", "Which tasks wait for an operator", &[BIZ, TASK_IDS], list::<Intervention>),
    (
        "get_task_effective_time",
        "How long a finished task worked, without its waiting nodes",
        &[BIZ, TASK],
        one::<EffectiveTime>,
    ),
    (
        "operate_node",
        "Acts on a node: callback, resume, retry, skip, forced_fail, skip_exg, pause_subproc, resume_subproc",
        &[BIZ, TASK, NODE, ("action", Kind::Text, true, ""), ("data", Kind::Json, false, "The action's data")],
        text,
    ),
    (
        "node_callback",
        "Finishes a waiting node with data as its outputs",
        &[BIZ, TASK, NODE, ("callback_data", Kind::Json, false, "")],
        object,
    ),
    ("get_task_node_detail", "A node's latest run with its earlier ones", &[BIZ, TASK, NODE], one::<NodeDetail>),
    ("get_task_node_data", "A node's latest run", &[BIZ, TASK, NODE], one::<NodeDetail>),
    ("get_plugin_list", "The stones known", &[BIZ], list::<Plugin>),
    ("get_plugin_detail", "A stone", &[BIZ, ("code", Kind::Text, true, "The stone's name")], one::<Plugin>),
    ("get_plugin_base_info", "The stones known, code and name", &[BIZ], list::<PluginBase>),
    (
        "create_periodic_task",
        "Makes a periodic task of a template (disabled until enabled); its crontab runs in UTC",
        &[BIZ, TEMPLATE, NAME, CRON, CONSTANTS, EXCLUDE, ("template_source", Kind::Text, false, "`project` (default)")],
        one::<Periodic>,
    ),
    ("get_periodic_task_list", "A business's periodic tasks", &[BIZ, EDIT_INFO], list::<Periodic>),
    ("get_periodic_task_info", "A periodic task with its form and tree", &[BIZ, TASK, EDIT_INFO], one::<Periodic>),
    (
        "set_periodic_task_enabled",
        "Enables or disables a periodic task: `{\"enabled\": …}`",
        &[BIZ, TASK, ("enabled", Kind::Flag, false, "false when left out")],
        object,
    ),
    (
        "modify_cron_for_periodic_task",
        "Gives a periodic task a new crontab: `{\"cron\": …}`",
        &[BIZ, TASK, CRON],
        object,
    ),
    (
        "modify_constants_for_periodic_task",
        "Sets a periodic task's constants; answers every constant of its tree",
        &[BIZ, TASK, CONSTANTS],
        object,
    ),
    (
        "create_clocked_task",
        "Plans a task of a template for a time (without an offset: UTC)",
        &[
            BIZ,
            TEMPLATE,
            ("task_name", Kind::Text, true, "The name its task is named after"),
            ("plan_start_time", Kind::Text, true, "`2022-05-16 20:26:40+0800`, later than now"),
            ("task_parameters", Kind::Json, false, "`{constants, exclude_task_nodes_id}`"),
        ],
        one::<Clocked>,
    ),
    (
        "get_clocked_task_list",
        "A business's clocked tasks, newest first, with `count` beside `data`",
        &[
            BIZ,
            ("id", Kind::Id, false, "This one only"),
            ("task_name", Kind::Text, false, "Contained in the name"),
            ("creator", Kind::Text, false, "Contained in the creator"),
            ("editor", Kind::Text, false, "Contained in the editor"),
            ("state", Kind::Text, false, "`not_started`, `started` or `start_failed`"),
            ("limit", Kind::Id, false, "1 to 1000 (100)"),
            ("offset", Kind::Id, false, ""),
        ],
        list::<Clocked>,
    ),
    ("get_user_project_list", "The businesses the app may reach", &[], list::<Project>),
    ("get_user_project_detail", "A business", &[BIZ], one::<ProjectDetail>),
];

/// The credentials every call carries (unless the `X-Bkapi-Authorization` header holds them).
const CREDENTIALS: [Param; 4] = [
    ("bk_app_code", Kind::Text, false, "The app (`app_code` serves too); required unless an access_token stands alone"),
    ("bk_app_secret", Kind::Text, false, "Its secret"),
    ("bk_username", Kind::Text, false, "The acting user (the app's code when absent)"),
    ("access_token", Kind::Text, false, "A Flowstone bearer token, naming the acting user"),
];

/// The bk-sops API's part of the document (tag `bk-sops`).
pub(in crate::api) fn api() -> OpenApi {
    let mut components = Components::new();
    let mut paths = Paths::new();
    let envelope = one::<Envelope>(&mut components);
    for (name, summary, params, data) in SERVED {
        let data = data(&mut components);
        for method in [HttpMethod::Get, HttpMethod::Post] {
            let op = operation(method.clone(), name, summary, params, &envelope, data.clone());
            paths.add_path_operation(format!("{BASE}/{name}/"), vec![method], op);
        }
    }
    for (name, why) in NOT_SERVED {
        let summary = format!("Not served (answers 3545100): {why}");
        for method in [HttpMethod::Get, HttpMethod::Post] {
            let op = operation(method.clone(), name, &summary, &[BIZ], &envelope, null());
            paths.add_path_operation(format!("{BASE}/{name}/"), vec![method], op);
        }
    }
    OpenApiBuilder::new().paths(paths).components(Some(components)).build()
}

/// The operation of API `name` by `method`: POST takes the parameters as a JSON body, GET in
/// the query string.
fn operation(
    method: HttpMethod,
    name: &str,
    summary: &str,
    params: &[Param],
    envelope: &RefOr<Schema>,
    data: RefOr<Schema>,
) -> utoipa::openapi::path::Operation {
    let all = params.iter().chain(&CREDENTIALS);
    let mut op = OperationBuilder::new().tag("bk-sops").summary(Some(summary)).security(SecurityRequirement::default());
    if method == HttpMethod::Get {
        op = op.operation_id(Some(format!("bk_sops_{name}_get")));
        for (param, _, required, description) in all {
            let text = ObjectBuilder::new().schema_type(Type::String).build();
            let query = ParameterBuilder::new()
                .name(*param)
                .parameter_in(ParameterIn::Query)
                .required(if *required { Required::True } else { Required::False })
                .description(Some(*description))
                .schema(Some(text));
            op = op.parameter(query);
        }
    } else {
        let mut body = ObjectBuilder::new();
        for (param, kind, required, description) in all {
            body = body.property(*param, schema_of(*kind, description));
            if *required {
                body = body.required(*param);
            }
        }
        let request = RequestBodyBuilder::new()
            .description(Some("The call's parameters"))
            .content("application/json", ContentBuilder::new().schema(Some(body.build())).build())
            .required(Some(Required::True))
            .build();
        op = op.operation_id(Some(format!("bk_sops_{name}"))).request_body(Some(request));
    }
    let answered = OneOfBuilder::new().item(enveloped(envelope, true, data)).item(enveloped(envelope, false, null()));
    let ok = ResponseBuilder::new()
        .description("The answer (`result: true`, `data` as below), or a refusal: `result: false`, `data: null`, `code` and `message` say why")
        .content("application/json", ContentBuilder::new().schema(Some(answered)).build())
        .build();
    op = op.response("200", ok);
    for (status, why) in [
        ("413", "The body is larger than 16 MiB"),
        ("429", "Too many wrong secrets from this address; `Retry-After` says when to try again"),
        ("503", "The store does not answer, or the server is stopping; try again"),
    ] {
        let content = ContentBuilder::new().schema(Some(envelope.clone())).build();
        op = op.response(status, ResponseBuilder::new().description(why).content("application/json", content).build());
    }
    op.build()
}

/// The envelope with `result` and `data` as given.
fn enveloped(envelope: &RefOr<Schema>, result: bool, data: RefOr<Schema>) -> Schema {
    let result = ObjectBuilder::new().schema_type(Type::Boolean).enum_values(Some([result]));
    let fields =
        ObjectBuilder::new().property("result", result).property("data", data).required("result").required("data");
    Schema::AllOf(AllOfBuilder::new().item(envelope.clone()).item(fields).build())
}

/// `null`.
fn null() -> RefOr<Schema> {
    RefOr::T(Schema::Object(ObjectBuilder::new().schema_type(Type::Null).build()))
}

fn schema_of(kind: Kind, description: &str) -> Schema {
    let described = |b: ObjectBuilder| Schema::Object(b.description(Some(description)).build());
    match kind {
        Kind::Text => described(ObjectBuilder::new().schema_type(Type::String)),
        Kind::Id => described(ObjectBuilder::new().schema_type(SchemaType::from_iter([Type::Integer, Type::String]))),
        Kind::Json => described(ObjectBuilder::new().schema_type(SchemaType::from_iter([Type::Object, Type::String]))),
        Kind::List => described(ObjectBuilder::new().schema_type(SchemaType::from_iter([Type::Array, Type::String]))),
        Kind::Flag => described(ObjectBuilder::new().schema_type(SchemaType::from_iter([Type::Boolean, Type::String]))),
    }
}

/// `data` of type `T`, its schemas added to the components.
fn one<T: ToSchema>(components: &mut Components) -> RefOr<Schema> {
    let mut nested = Vec::new();
    T::schemas(&mut nested);
    components.schemas.extend(nested);
    components.schemas.insert(T::name().into_owned(), T::schema());
    RefOr::Ref(Ref::from_schema_name(T::name()))
}

/// `data`, a list of `T`.
fn list<T: ToSchema>(components: &mut Components) -> RefOr<Schema> {
    RefOr::T(Schema::Array(ArrayBuilder::new().items(one::<T>(components)).build()))
}

/// `data`, an empty object.
fn object(_: &mut Components) -> RefOr<Schema> {
    RefOr::T(Schema::Object(ObjectBuilder::new().schema_type(Type::Object).build()))
}

/// `data`, `"success"`.
fn text(_: &mut Components) -> RefOr<Schema> {
    RefOr::T(Schema::Object(ObjectBuilder::new().schema_type(Type::String).enum_values(Some(["success"])).build()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_api_is_documented_once_served_or_not() {
        let mut names: Vec<&str> = SERVED.iter().map(|(n, ..)| *n).chain(NOT_SERVED.iter().map(|(n, _)| *n)).collect();
        let all = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all, "a name is documented twice");
        let doc = api();
        assert_eq!(doc.paths.paths.len(), all);
        let item = &doc.paths.paths[&format!("{BASE}/get_task_status/")];
        assert!(item.get.is_some() && item.post.is_some(), "every API takes GET and POST");
        assert!(doc.paths.paths.contains_key(&format!("{BASE}/get_task_status/")));
    }
}
