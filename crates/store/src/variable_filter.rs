//! Filters of user tasks by the values of their variables (their own, or their process's), as
//! Flowable's task query takes them, checked by the database: what a filter means is decided
//! here once ([`Condition`]), and each backend writes it in its own SQL.

use serde_json::Value;

/// Whose variables a filter reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VariableScope {
    /// The task's own (local) variables.
    Task,
    /// The variables of the task's process instance (a standalone task has none).
    Process,
}

/// How a variable's value is compared with the filter's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VariableOp {
    /// The same value (a number equal to a number of another spelling).
    Equals,
    /// Not the same value (a value of another type too).
    NotEquals,
    /// The same text, case aside.
    EqualsIgnoreCase,
    /// Text other than this, case aside.
    NotEqualsIgnoreCase,
    /// Before it: numbers by value, text by bytes, false before true.
    LessThan,
    /// After it.
    GreaterThan,
    /// Before it or the same.
    LessThanOrEquals,
    /// After it or the same.
    GreaterThanOrEquals,
    /// Text matching a `LIKE` pattern (`%` any run, `_` any character, `\` escapes).
    Like,
    /// As [`VariableOp::Like`], case aside.
    LikeIgnoreCase,
}

impl VariableOp {
    /// Every operation, by its Flowable name.
    pub const ALL: [(&'static str, VariableOp); 10] = [
        ("equals", VariableOp::Equals),
        ("notEquals", VariableOp::NotEquals),
        ("equalsIgnoreCase", VariableOp::EqualsIgnoreCase),
        ("notEqualsIgnoreCase", VariableOp::NotEqualsIgnoreCase),
        ("lessThan", VariableOp::LessThan),
        ("greaterThan", VariableOp::GreaterThan),
        ("lessThanOrEquals", VariableOp::LessThanOrEquals),
        ("greaterThanOrEquals", VariableOp::GreaterThanOrEquals),
        ("like", VariableOp::Like),
        ("likeIgnoreCase", VariableOp::LikeIgnoreCase),
    ];

    /// The operation Flowable names `name`.
    pub fn parse(name: &str) -> Option<VariableOp> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, op)| *op)
    }
}

/// One variable filter: a variable named `name` (any variable, when none: only with
/// [`VariableOp::Equals`]) of `scope` holds a value that compares to `value` by `op`. A
/// variable that does not exist matches no filter.
#[derive(Debug, Clone, PartialEq)]
pub struct VariableFilter {
    /// Whose variables.
    pub scope: VariableScope,
    /// Which variable; any, when none.
    pub name: Option<String>,
    /// How it compares.
    pub op: VariableOp,
    /// With what.
    pub value: Value,
}

/// The JSON type a stored value must have for a comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JsonKind {
    Number,
    Text,
    Boolean,
    Null,
    /// An object or an array.
    Structured,
}

/// A value bound into a comparison.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Bound {
    Number(f64),
    Text(String),
    /// `false` as 0, `true` as 1.
    Boolean(i64),
}

/// What a filter asks of one stored value, for a backend to write as SQL.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Condition {
    /// Nothing matches.
    Never,
    /// The value has this type.
    Is(JsonKind),
    /// The value has the bound's type and compares to it by the SQL operator.
    Compare(&'static str, Bound),
    /// The value is text and, both lower-cased, compares so (`=`, `<>` or `LIKE`).
    CompareLower(&'static str, String),
    /// The value is an object or an array equal to this JSON text.
    JsonEquals(String),
    /// The condition does not hold.
    Not(Box<Condition>),
}

impl VariableFilter {
    /// What this filter asks of a stored value: numbers compare with numbers, text with text
    /// (byte order), booleans with booleans (false before true); `notEquals` holds for a value
    /// of another type; the case-insensitive and `like` operations need text.
    pub(crate) fn condition(&self) -> Condition {
        use Condition::*;
        use VariableOp::*;
        let bound = match &self.value {
            Value::Number(n) => n.as_f64().map(Bound::Number),
            Value::String(s) => Some(Bound::Text(s.clone())),
            Value::Bool(b) => Some(Bound::Boolean(i64::from(*b))),
            Value::Null | Value::Array(_) | Value::Object(_) => None,
        };
        let text = self.value.as_str().map(str::to_owned);
        let equal = || match (&bound, &self.value) {
            (Some(b), _) => Compare("=", b.clone()),
            (None, Value::Null) => Is(JsonKind::Null),
            (None, other) => JsonEquals(other.to_string()),
        };
        let order = |sql: &'static str| bound.clone().map_or(Never, |b| Compare(sql, b));
        match self.op {
            Equals => equal(),
            NotEquals => Not(Box::new(equal())),
            EqualsIgnoreCase => text.map_or(Never, |t| CompareLower("=", t)),
            NotEqualsIgnoreCase => text.map_or(Is(JsonKind::Text), |t| CompareLower("<>", t)),
            LessThan => order("<"),
            GreaterThan => order(">"),
            LessThanOrEquals => order("<="),
            GreaterThanOrEquals => order(">="),
            Like => text.map_or(Never, |t| Compare("LIKE", Bound::Text(crate::like_pattern(&t)))),
            LikeIgnoreCase => text.map_or(Never, |t| CompareLower("LIKE", crate::like_pattern(&t))),
        }
    }
}

impl Bound {
    pub(crate) fn kind(&self) -> JsonKind {
        match self {
            Bound::Number(_) => JsonKind::Number,
            Bound::Text(_) => JsonKind::Text,
            Bound::Boolean(_) => JsonKind::Boolean,
        }
    }
}

/// A source of a filter's candidate values: the SQL after `SELECT 1` (naming the task `t`),
/// the comparison that picks a variable by name (its bound name follows), and the SQL of a
/// candidate's JSON type and of its value.
struct Source {
    from: &'static str,
    name_is: &'static str,
    type_of: &'static str,
    value: &'static str,
}

/// How a backend writes a condition on a candidate's JSON value.
struct Dialect {
    /// The SQL after a type expression that holds for values of this kind.
    types: fn(JsonKind) -> &'static str,
    /// A candidate's value (`value`) as an SQL value of this kind, to compare with a bound one.
    scalar: fn(&str, JsonKind) -> String,
    /// What follows a text to be ordered by its bytes.
    by_bytes: &'static str,
    /// A candidate's value as JSON to compare, and what goes around a bound JSON text.
    json: (fn(&str) -> String, &'static str, &'static str),
}

/// Writes ` AND (…)`: some variable of the filter's scope, from any of `sources`, holds a value
/// for which the filter's condition holds.
fn push_exists<DB: sqlx::Database>(q: &mut sqlx::QueryBuilder<DB>, f: &VariableFilter, sources: &[Source], d: &Dialect)
where
    for<'a> String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    for<'a> f64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    for<'a> i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    let wanted = f.condition();
    q.push(" AND (");
    for (i, source) in sources.iter().enumerate() {
        if i > 0 {
            q.push(" OR ");
        }
        q.push("EXISTS (SELECT 1 ").push(source.from);
        if let Some(name) = &f.name {
            q.push(" AND ").push(source.name_is).push_bind(name.clone());
        }
        q.push(" AND ");
        push_condition(q, d, source, &wanted);
        q.push(")");
    }
    q.push(")");
}

/// Writes `c` of the candidates of `s`. A value is cast only once its type is checked (`CASE`:
/// a database may evaluate the parts of an `AND` in any order, and a cast of the wrong type
/// fails the query).
fn push_condition<DB: sqlx::Database>(q: &mut sqlx::QueryBuilder<DB>, d: &Dialect, s: &Source, c: &Condition)
where
    for<'a> String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    for<'a> f64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    for<'a> i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    let is = |kind: JsonKind| format!("{} {}", s.type_of, (d.types)(kind));
    let escape = |op: &str| if op == "LIKE" { crate::LIKE_ESCAPE } else { "" };
    match c {
        Condition::Never => {
            q.push("1 = 0");
        }
        Condition::Is(kind) => {
            q.push(is(*kind));
        }
        Condition::Compare(op, bound) => {
            let value = (d.scalar)(s.value, bound.kind());
            let order = if bound.kind() == JsonKind::Text { d.by_bytes } else { "" };
            q.push(format!("CASE WHEN {} THEN {value}{order} {op} ", is(bound.kind())));
            match bound {
                Bound::Number(n) => q.push_bind(*n),
                Bound::Text(t) => q.push_bind(t.clone()),
                Bound::Boolean(b) => q.push_bind(*b),
            };
            q.push(escape(op)).push(" ELSE false END");
        }
        Condition::CompareLower(op, wanted) => {
            let text = (d.scalar)(s.value, JsonKind::Text);
            q.push(format!("CASE WHEN {} THEN lower({text}) {op} lower(", is(JsonKind::Text)));
            q.push_bind(wanted.clone()).push(")").push(escape(op)).push(" ELSE false END");
        }
        Condition::JsonEquals(wanted) => {
            let (value, before, after) = d.json;
            q.push(format!("({} AND {} = {before}", is(JsonKind::Structured), value(s.value)));
            q.push_bind(wanted.clone()).push(after).push(")");
        }
        Condition::Not(inner) => {
            q.push("NOT (");
            push_condition(q, d, s, inner);
            q.push(")");
        }
    }
}

/// SQLite: a candidate's type is `json_type`'s (`integer`, `real`, `text`, `true`, …) and its
/// value `json_extract`'s (true as 1, an object as its JSON text).
pub(crate) mod sqlite {
    use super::*;
    use sqlx::{QueryBuilder, Sqlite};

    const TASK: [Source; 1] = [Source {
        from: "FROM task_variables v WHERE v.task_id = t.id AND v.value IS NOT NULL",
        name_is: "v.name = ",
        type_of: "json_type(v.value)",
        value: "json_extract(v.value, '$')",
    }];

    /// A running instance keeps its variables in its state document, or (a large one) one
    /// part each.
    const PROCESS: [Source; 2] = [
        Source {
            from: "FROM instances i, json_each(CASE WHEN json_valid(i.state) THEN i.state ELSE '{}' END, '$.variables') j \
                   WHERE i.id = t.instance_id",
            name_is: "j.key = ",
            type_of: "j.type",
            value: "j.value",
        },
        Source {
            from: "FROM instance_parts p WHERE p.instance_id = t.instance_id AND p.part LIKE 'v:%'",
            name_is: "p.part = 'v:' || ",
            type_of: "json_type(p.body)",
            value: "json_extract(p.body, '$')",
        },
    ];

    const DIALECT: Dialect = Dialect {
        types: |kind| match kind {
            JsonKind::Number => "IN ('integer', 'real')",
            JsonKind::Text => "= 'text'",
            JsonKind::Boolean => "IN ('true', 'false')",
            JsonKind::Null => "= 'null'",
            JsonKind::Structured => "IN ('object', 'array')",
        },
        scalar: |value, _| value.to_owned(),
        by_bytes: "",
        json: (|value| format!("json({value})"), "json(", ")"),
    };

    /// Writes the filter as ` AND (…)` of the task `t`.
    pub(crate) fn push(q: &mut QueryBuilder<Sqlite>, f: &VariableFilter) {
        let sources: &[Source] = if f.scope == VariableScope::Task { &TASK } else { &PROCESS };
        push_exists(q, f, sources, &DIALECT);
    }
}

/// PostgreSQL: a candidate is one `jsonb` value.
pub(crate) mod postgres {
    use super::*;
    use sqlx::{Postgres, QueryBuilder};

    const TASK: [Source; 1] = [Source {
        from: "FROM task_variables v WHERE v.task_id = t.id AND v.value IS NOT NULL",
        name_is: "v.name = ",
        type_of: "jsonb_typeof(v.value::jsonb)",
        value: "v.value::jsonb",
    }];

    /// A running instance keeps its variables in its state document, or (a large one) one
    /// part each.
    const PROCESS: [Source; 2] = [
        Source {
            from: "FROM instances i CROSS JOIN LATERAL \
                   jsonb_each(CASE WHEN i.state = '' THEN NULL ELSE i.state::jsonb -> 'variables' END) j \
                   WHERE i.id = t.instance_id",
            name_is: "j.key = ",
            type_of: "jsonb_typeof(j.value)",
            value: "j.value",
        },
        Source {
            from: "FROM instance_parts p WHERE p.instance_id = t.instance_id AND p.part LIKE 'v:%'",
            name_is: "p.part = 'v:' || ",
            type_of: "jsonb_typeof(p.body::jsonb)",
            value: "p.body::jsonb",
        },
    ];

    const DIALECT: Dialect = Dialect {
        types: |kind| match kind {
            JsonKind::Number => "= 'number'",
            JsonKind::Text => "= 'string'",
            JsonKind::Boolean => "= 'boolean'",
            JsonKind::Null => "= 'null'",
            JsonKind::Structured => "IN ('object', 'array')",
        },
        scalar: |value, kind| match kind {
            JsonKind::Number => format!("({value} #>> '{{}}')::float8"),
            JsonKind::Boolean => format!("({value} #>> '{{}}')::boolean::int"),
            _ => format!("({value} #>> '{{}}')"),
        },
        by_bytes: " COLLATE \"C\"",
        json: (|value| value.to_owned(), "CAST(", " AS jsonb)"),
    };

    /// Writes the filter as ` AND (…)` of the task `t`.
    pub(crate) fn push(q: &mut QueryBuilder<Postgres>, f: &VariableFilter) {
        let sources: &[Source] = if f.scope == VariableScope::Task { &TASK } else { &PROCESS };
        push_exists(q, f, sources, &DIALECT);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn condition(op: &str, value: Value) -> Condition {
        let op = VariableOp::parse(op).unwrap_or(VariableOp::Equals);
        VariableFilter { scope: VariableScope::Task, name: Some("v".into()), op, value }.condition()
    }

    #[test]
    fn each_operation_asks_for_its_type_and_comparison() {
        assert_eq!(condition("equals", json!(3)), Condition::Compare("=", Bound::Number(3.0)));
        assert_eq!(condition("lessThan", json!("b")), Condition::Compare("<", Bound::Text("b".into())));
        assert_eq!(condition("greaterThan", json!(true)), Condition::Compare(">", Bound::Boolean(1)));
        assert_eq!(condition("equals", Value::Null), Condition::Is(JsonKind::Null));
        assert_eq!(condition("equals", json!([1])), Condition::JsonEquals("[1]".into()));
        assert_eq!(
            condition("notEquals", json!(3)),
            Condition::Not(Box::new(Condition::Compare("=", Bound::Number(3.0))))
        );
        assert_eq!(condition("equalsIgnoreCase", json!(3)), Condition::Never, "only text compares without case");
        assert_eq!(condition("notEqualsIgnoreCase", json!(3)), Condition::Is(JsonKind::Text));
        assert_eq!(condition("lessThan", json!({"a": 1})), Condition::Never);
        assert_eq!(condition("likeIgnoreCase", json!("Ke%")), Condition::CompareLower("LIKE", "Ke%".into()));
    }
}
