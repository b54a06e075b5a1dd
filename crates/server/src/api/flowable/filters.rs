//! The filters of Flowable's lists, described once for the OpenAPI document: as the query
//! parameters of a `GET` list, and as the properties of the body of its `POST query/…` twin.
//!
//! The handlers read them with [`super::Params`], as Flowable's REST layer reads them (a number
//! may come as text, and text as a number); the table says what each one means and takes.

use crate::error::ApiError;
use serde_json::{Map, Value, json};
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ArrayBuilder, KnownFormat, ObjectBuilder, Schema, SchemaFormat, SchemaType, Type};
use utoipa::openapi::{RefOr, Required};

/// One filter of a list.
pub(super) struct Filter {
    pub(super) name: &'static str,
    pub(super) kind: Kind,
    pub(super) about: &'static str,
}

/// What a filter takes.
pub(super) enum Kind {
    Text,
    Whole,
    /// A whole number, 0 or more.
    Count,
    Flag,
    /// An ISO-8601 instant.
    Date,
    /// One of these words.
    OneOf(&'static [&'static str]),
    /// A list of texts (in a query body only).
    Texts,
    /// A list of `{name, value, operation, type}` (in a query body only).
    Variables,
}

/// A filter named `name` that takes `kind`.
pub(super) const fn filter(name: &'static str, kind: Kind, about: &'static str) -> Filter {
    Filter { name, kind, about }
}

/// The paging every list takes, beside its own `sort` (see [`sort`]).
pub(super) const PAGING: [Filter; 3] = [
    filter("start", Kind::Count, "The first item of the page (0)"),
    filter("size", Kind::Count, "How many items a page holds (10; at most 1000)"),
    filter("order", Kind::OneOf(&["asc", "desc"]), "The order of the sort (asc)"),
];

/// The `sort` filter of a list sorted by one of `names`, the first the default.
pub(super) const fn sort(names: &'static [&'static str]) -> Filter {
    filter("sort", Kind::OneOf(names), "The property to sort by (the first listed)")
}

impl Filter {
    /// Its schema; `nullable` (in a body, where null is as good as absent) takes null too.
    fn schema(&self, nullable: bool) -> Schema {
        let types = |t: Type| {
            if nullable { SchemaType::from_iter([t, Type::Null]) } else { SchemaType::Type(t) }
        };
        let typed = |t: Type| ObjectBuilder::new().schema_type(types(t));
        let whole = || typed(Type::Integer).format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)));
        let object = match self.kind {
            Kind::Text => typed(Type::String),
            Kind::Whole => whole(),
            Kind::Count => whole().minimum(Some(0)),
            Kind::Flag => typed(Type::Boolean),
            Kind::Date => typed(Type::String).format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))),
            Kind::OneOf(words) => {
                let null = nullable.then_some(Value::Null);
                typed(Type::String).enum_values(Some(words.iter().map(|w| json!(w)).chain(null)))
            }
            Kind::Texts => {
                return ArrayBuilder::new().schema_type(types(Type::Array)).items(typed(Type::String)).into();
            }
            Kind::Variables => {
                let operations = flowstone_store::VariableOp::ALL.map(|(name, _)| name);
                let text = || ObjectBuilder::new().schema_type(Type::String);
                let item = ObjectBuilder::new()
                    .property("name", text())
                    .property("value", ObjectBuilder::new())
                    .property("operation", text().enum_values(Some(operations)))
                    .property("type", text());
                return ArrayBuilder::new().schema_type(types(Type::Array)).items(item).into();
            }
        };
        object.description(Some(self.about)).into()
    }

    /// Whether a query string can carry it.
    fn in_query(&self) -> bool {
        !matches!(self.kind, Kind::Texts | Kind::Variables)
    }
}

/// The query parameters of the filters in `tables`.
pub(super) fn parameters(tables: &[&[Filter]]) -> Vec<Parameter> {
    let all = tables.iter().flat_map(|t| t.iter()).filter(|f| f.in_query());
    all.map(|f| {
        ParameterBuilder::new()
            .name(f.name)
            .parameter_in(ParameterIn::Query)
            .required(Required::False)
            .description(Some(f.about))
            .schema(Some(f.schema(false)))
            .build()
    })
    .collect()
}

/// The body of a query or a change: an object of the filters in `tables`, none required,
/// each taking null as well.
pub(super) fn body(tables: &[&[Filter]]) -> RefOr<Schema> {
    let fields = tables.iter().flat_map(|t| t.iter());
    fields.fold(ObjectBuilder::new(), |o, f| o.property(f.name, f.schema(true))).into()
}

/// Refuses a parameter of `tables` whose JSON type does not fit it, as Flowable's JSON reader
/// does (text is text; a number or a flag may come as text, which [`super::Params`] reads).
pub(super) fn check(params: &Map<String, Value>, tables: &[&[Filter]]) -> Result<(), ApiError> {
    for f in tables.iter().flat_map(|t| t.iter()) {
        let Some(v) = params.get(f.name).filter(|v| !v.is_null()) else { continue };
        let (fits, wanted) = match f.kind {
            Kind::Text | Kind::Date | Kind::OneOf(_) => (v.is_string(), "text"),
            Kind::Whole | Kind::Count => (v.is_i64() || v.is_u64() || v.is_string(), "a whole number"),
            Kind::Flag => (v.is_boolean() || v.is_string(), "true or false"),
            Kind::Texts => (v.as_array().is_some_and(|a| a.iter().all(Value::is_string)), "a list of texts"),
            Kind::Variables => (v.is_array(), "a list of variable filters"),
        };
        if !fits {
            return Err(ApiError::bad_request(format!("Parameter '{}' must be {wanted}, not {v}", f.name)));
        }
    }
    Ok(())
}

/// Describes the filters of one list as a type the OpenAPI macros take: `params($name)` on
/// its `GET`, `request_body = $name` on its `POST query/…`; `checked` ones (read from a JSON
/// body) get `$name::check`, which refuses a value of the wrong JSON type.
macro_rules! described {
    ($(#[$doc:meta])* $name:ident: $($table:expr),+) => {
        $(#[$doc])*
        pub(super) struct $name;

        impl utoipa::IntoParams for $name {
            fn into_params(
                _: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
            ) -> Vec<utoipa::openapi::path::Parameter> {
                super::filters::parameters(&[$(&$table),+])
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                super::filters::body(&[$(&$table),+])
            }
        }

        impl utoipa::ToSchema for $name {}
    };
    ($(#[$doc:meta])* checked $name:ident: $($table:expr),+) => {
        described!($(#[$doc])* $name: $($table),+);

        impl $name {
            /// Refuses a parameter whose JSON type does not fit it.
            fn check(
                params: &serde_json::Map<String, serde_json::Value>,
            ) -> Result<(), crate::error::ApiError> {
                super::filters::check(params, &[$(&$table),+])
            }
        }
    };
}
pub(super) use described;

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: [Filter; 2] =
        [filter("name", Kind::Text, "Its name"), filter("taskVariables", Kind::Variables, "Variable filters")];

    #[test]
    fn a_query_string_takes_the_scalar_filters_and_a_body_takes_them_all() {
        let names: Vec<String> = parameters(&[&TABLE, &PAGING]).into_iter().map(|p| p.name).collect();
        assert_eq!(names, ["name", "start", "size", "order"]);
        let RefOr::T(Schema::Object(body)) = body(&[&TABLE]) else { panic!("not an object") };
        assert!(body.properties.contains_key("taskVariables") && body.properties.contains_key("name"));
    }
}
