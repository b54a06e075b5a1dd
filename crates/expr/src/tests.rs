use super::*;
use serde_json::{Map, Value, json};

fn vars() -> Map<String, Value> {
    json!({
        "t1": 1, "slaveNum": "6", "route": "a", "approved": true, "amount": 150.5,
        "machine": {"ip": "10.0.0.1", "disks": [{"size": 20}]}, "list": [1, 2, 3],
        "nothing": null, "blank": "", "name": "world", "master-1a": {"ip": "10.1.1.1"}
    })
    .as_object()
    .cloned()
    .unwrap_or_default()
}

fn eval(src: &str) -> Value {
    Expression::parse(src).unwrap_or_else(|e| panic!("{e}")).eval(&vars()).unwrap_or_else(|e| panic!("{e}"))
}

fn eval_err(src: &str) -> String {
    Expression::parse(src).unwrap_or_else(|e| panic!("{e}")).eval(&vars()).expect_err("should fail").message
}

#[test]
fn literals_keep_their_json_type() {
    assert_eq!(eval("${1}"), json!(1));
    assert_eq!(eval("${2.5}"), json!(2.5));
    assert_eq!(eval("${'a'}"), json!("a"));
    assert_eq!(eval("${\"b\"}"), json!("b"));
    assert_eq!(eval("${true}"), json!(true));
    assert_eq!(eval("${null}"), Value::Null);
}

#[test]
fn arithmetic_follows_juel() {
    assert_eq!(eval("${t1 + 1}"), json!(2));
    assert_eq!(eval("${2 * 3 - 1}"), json!(5));
    assert_eq!(eval("${7 % 3}"), json!(1));
    assert_eq!(eval("${7 mod 3}"), json!(1));
    assert_eq!(eval("${5 / 2}"), json!(2.5));
    assert_eq!(eval("${6 div 3}"), json!(2.0));
    assert_eq!(eval("${-t1}"), json!(-1));
    assert_eq!(eval("${(1 + 2) * 3}"), json!(9));
    assert_eq!(eval("${slaveNum + 1}"), json!(7), "numeric text adds as a number");
    assert_eq!(eval("${amount * 2}"), json!(301.0));
}

#[test]
fn plus_concatenates_non_numeric_text() {
    assert_eq!(eval("${'slave-' + t1}"), json!("slave-1"));
    assert_eq!(eval("${name + '!'}"), json!("world!"));
}

#[test]
fn comparison_coerces_like_juel() {
    assert_eq!(eval("${route == 'a'}"), json!(true));
    assert_eq!(eval("${route eq 'b'}"), json!(false));
    assert_eq!(eval("${slaveNum == 6}"), json!(true));
    assert_eq!(eval("${slaveNum > 5}"), json!(true));
    assert_eq!(eval("${amount ge 150.5}"), json!(true));
    assert_eq!(eval("${t1 lt 2 and t1 gt 0}"), json!(true));
    assert_eq!(eval("${t1 le 0 or t1 ne 1}"), json!(false));
    assert_eq!(eval("${approved == 'true'}"), json!(true));
    assert_eq!(eval("${'abc' < 'abd'}"), json!(true));
    assert_eq!(eval("${nothing == null}"), json!(true));
}

#[test]
fn boolean_operators_and_words() {
    assert_eq!(eval("${approved && t1 == 1}"), json!(true));
    assert_eq!(eval("${!approved || false}"), json!(false));
    assert_eq!(eval("${not approved}"), json!(false));
    assert_eq!(eval("${approved ? 'yes' : 'no'}"), json!("yes"));
}

#[test]
fn empty_operator() {
    assert_eq!(eval("${empty nothing}"), json!(true));
    assert_eq!(eval("${empty blank}"), json!(true));
    assert_eq!(eval("${empty list}"), json!(false));
    assert_eq!(eval("${not empty name}"), json!(true));
}

#[test]
fn member_and_index_access() {
    assert_eq!(eval("${machine.ip}"), json!("10.0.0.1"));
    assert_eq!(eval("${machine.disks[0].size}"), json!(20));
    assert_eq!(eval("${machine['ip']}"), json!("10.0.0.1"));
    assert_eq!(eval("${machine.missing}"), Value::Null);
    assert_eq!(eval("${list[5]}"), Value::Null);
    assert_eq!(eval("${list.size}"), json!(3));
}

#[test]
fn templates_concatenate_text() {
    assert_eq!(eval("Hello ${name}!"), json!("Hello world!"));
    assert_eq!(eval("plain"), json!("plain"));
    assert_eq!(eval("${t1}-${route}"), json!("1-a"));
    assert_eq!(eval("#{t1 + 1}"), json!(2));
    assert_eq!(eval("${'}'}"), json!("}"), "a brace inside a string does not close the expression");
}

#[test]
fn unknown_variable_is_a_runtime_error() {
    assert_eq!(eval_err("${missing + 1}"), "unknown variable `missing`");
}

#[test]
fn type_errors_name_the_value() {
    assert!(eval_err("${machine * 2}").contains("needs numbers"));
    assert!(eval_err("${1 / 0}").contains("division by zero"));
    assert!(eval_err("${9223372036854775807 + 1}").contains("overflow"));
    let e = Expression::parse("${t1 && true}").unwrap_or_else(|e| panic!("{e}"));
    assert!(e.eval_bool(&vars()).expect_err("number is no boolean").message.contains("not a boolean"));
}

#[test]
fn syntax_errors_point_at_the_offset() {
    let err = Expression::parse("${a +}").expect_err("incomplete");
    assert_eq!(err.offset, 5);
    assert!(err.message.contains("ends too early"), "{}", err.message);
    assert!(Expression::parse("${a").expect_err("unclosed").message.contains("unclosed"));
    assert!(Expression::parse("${}").expect_err("empty").message.contains("empty"));
    assert!(Expression::parse("${a = 1}").expect_err("assign").message.contains("assignment"));
    assert!(Expression::parse("${a b}").expect_err("two names").message.contains("unexpected"));
    assert!(Expression::parse("${bean.call()}").expect_err("call").message.contains("unknown method `call`"));
    assert!(Expression::parse("${lenn(list)}").expect_err("typo").message.contains("unknown function `lenn`"));
    assert!(Expression::parse("${len(a, b)}").expect_err("arity").message.contains("does not take 2"));
    assert!(Expression::parse("${(a)(1)}").expect_err("anonymous").message.contains("only named"));
    assert!(Expression::parse("${'open}").is_err());
}

#[test]
fn eval_bool_coerces_text() {
    let e = Expression::parse("${approved}").unwrap_or_else(|e| panic!("{e}"));
    assert!(e.eval_bool(&vars()).unwrap_or(false));
    let e = Expression::parse("${nothing}").unwrap_or_else(|e| panic!("{e}"));
    assert!(!e.eval_bool(&vars()).unwrap_or(true));
}

#[test]
fn bare_conditions_parse_as_one_expression() {
    let e = Expression::parse_bare("t1 == 1").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(e.eval(&vars()).ok(), Some(json!(true)));
    let e = Expression::parse_bare("${t1 == 2}").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(e.eval(&vars()).ok(), Some(json!(false)));
}

#[test]
fn variables_object_reaches_names_that_are_not_identifiers() {
    assert_eq!(eval("${variables['master-1a'].ip}"), json!("10.1.1.1"));
}

#[test]
fn java_methods_of_flowable_models() {
    assert_eq!(eval("${route.equals('a')}"), json!(true));
    assert_eq!(eval("${name.equalsIgnoreCase('WORLD')}"), json!(true));
    assert_eq!(eval("${list.contains(2) && !list.isEmpty()}"), json!(true));
    assert_eq!(eval("${list.size() + name.length()}"), json!(8));
    assert_eq!(eval("${name.substring(1, 3).toUpperCase()}"), json!("OR"));
    assert_eq!(eval("${machine.ip.startsWith('10.') and blank.isEmpty()}"), json!(true));
    assert_eq!(eval("${name.indexOf('r')}"), json!(2));
    assert!(eval_err("${name.substring(9)}").contains("outside"));
}

#[test]
fn python_calls_of_bk_sops_templates() {
    let mut v = vars();
    v.insert("time_list".into(), json!("1,2,3,4"));
    v.insert("_loop".into(), json!(2));
    let run = |src: &str| Expression::parse(src).map(|e| e.eval(&v)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(run("${time_list.split(\",\")[_loop-1]}"), Ok(json!("2")));
    assert_eq!(run("${len(time_list.split(\",\"))}"), Ok(json!(4)));
    assert_eq!(run("${time_list.split(',')[-1]}"), Ok(json!("4")));
    assert_eq!(run("${int('7') + float('0.5')}"), Ok(json!(7.5)));
    assert_eq!(run("${','.join(list)} ${max(list)} ${min(3, slaveNum)}"), Ok(json!("1,2,3 3 3")));
    assert_eq!(run("${' x '.strip().upper()}"), Ok(json!("X")));
    assert!(run("${int('x')}").is_err_and(|e| e.message.contains("not a number")));
}

#[test]
fn variables_are_what_an_expression_reads_not_what_it_calls() {
    let e = Expression::parse(r#"${time_list.split(",")[_loop - 1]} on ${host.ip} ${len(hosts) > n ? a : a}"#)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(e.variables(), ["time_list", "_loop", "host", "hosts", "n", "a"]);
    assert!(Expression::parse("plain text").is_ok_and(|e| e.variables().is_empty()));
}

/// Runs `f` on a thread with half the stack the server's threads have, so that a
/// test passes only when the work is bounded well below what would overflow them.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new().stack_size(1024 * 1024).spawn(f).expect("thread").join().expect("no overflow")
}

#[test]
fn nesting_deeper_than_the_limit_is_refused_at_parse_time_naming_the_limit() {
    for (open, close) in
        [("(", ")"), ("!", ""), ("-", ""), ("empty ", ""), ("f(", ")"), ("a[", "]"), ("true ? 1 : ", "")]
    {
        let deep = format!("${{{}1{}}}", open.repeat(1_000), close.repeat(1_000));
        let err = on_small_stack(move || Expression::parse(&deep).expect_err("too deep"));
        assert!(err.message.contains("nests more than 64 levels"), "{open}: {err}");
        assert!(err.source_text.len() < 300, "the message stays short");
    }
}

#[test]
fn nesting_at_the_limit_parses_and_evaluates() {
    let src = format!("${{{}1{}}}", "(".repeat(MAX_NESTING - 1), ")".repeat(MAX_NESTING - 1));
    assert_eq!(on_small_stack(move || eval(&src)), json!(1));
    let src = format!("${{{}true}}", "!".repeat(MAX_NESTING - 1));
    assert_eq!(on_small_stack(move || eval(&src)), json!(false));
}

#[test]
fn long_operator_and_member_chains_stay_flat() {
    let sum = format!("${{1{}}}", "+1".repeat(8_000));
    assert_eq!(on_small_stack(move || eval(&sum)), json!(8_001));
    let members = format!("${{machine{}}}", ".ip".repeat(4_000));
    assert_eq!(on_small_stack(move || eval(&members)), Value::Null);
    let and = format!("${{true{}}}", " && true".repeat(2_000));
    assert_eq!(on_small_stack(move || eval(&and)), json!(true));
    let methods = format!("${{name{}}}", ".trim()".repeat(2_000));
    assert_eq!(on_small_stack(move || eval(&methods)), json!("world"));
}

#[test]
fn texts_longer_than_the_limits_are_refused() {
    let code = format!("${{{}}}", "1+".repeat(MAX_CODE_LENGTH / 2) + "1");
    assert!(Expression::parse(&code).expect_err("long").message.contains("at most 16384"));
    let text = "x".repeat(MAX_SOURCE_LENGTH + 1);
    assert!(Expression::parse(&text).expect_err("long").message.contains("at most 1048576"));
}

#[test]
fn growth_past_the_text_limit_fails_the_evaluation_before_it_allocates() {
    let mut vars = vars();
    vars.insert("big".into(), json!("x".repeat(MAX_TEXT_LENGTH / 2 + 1)));
    let fails = |src: &str| Expression::parse(src).expect("parses").eval(&vars).expect_err("too long").message;
    assert!(fails("${big + big}").contains("at most 16777216"));
    assert!(fails("${big.replace('x', 'xx')}").contains("at most"));
    vars.insert("bigs".into(), json!([vars["big"], vars["big"]]));
    let fails = |src: &str| Expression::parse(src).expect("parses").eval(&vars).expect_err("too long").message;
    assert!(fails("${','.join(bigs)}").contains("at most"));
    assert!(fails("${big}${big}").contains("at most"), "templates concatenate within the limit too");
    // Repeated replacing grows exponentially: stopped at the step that passes the limit.
    let blowup = format!("${{name{}}}", ".replace('o', 'oooooooooo')".repeat(20));
    assert!(Expression::parse(&blowup).expect("parses").eval(&vars).is_err());
}

/// Variables that take what expressions set.
struct Settable {
    vars: serde_json::Map<String, Value>,
    set: std::cell::RefCell<Vec<(String, Value)>>,
}

impl Variables for Settable {
    fn get(&self, name: &str) -> Option<&Value> {
        self.vars.get(name)
    }

    fn all(&self) -> serde_json::Map<String, Value> {
        self.vars.clone()
    }

    fn set(&self, name: &str, value: Value) -> Result<(), String> {
        self.set.borrow_mut().push((name.to_owned(), value));
        Ok(())
    }
}

#[test]
fn execution_get_and_set_variable_read_and_set_where_setting_is_allowed() {
    let vars = Settable {
        vars: json!({"a": 2, "name": "x"}).as_object().cloned().unwrap_or_default(),
        set: Default::default(),
    };
    let set = Expression::parse("${execution.setVariable('b', a * 21)}").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(set.eval(&vars), Ok(Value::Null));
    let local = Expression::parse("${task.setVariableLocal(name, execution.getVariable('a') + 1)}")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(local.eval(&vars), Ok(Value::Null));
    assert_eq!(*vars.set.borrow(), [("b".to_owned(), json!(42)), ("x".to_owned(), json!(3))]);
    let missing = Expression::parse("${execution.getVariable('nope')}").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(missing.eval(&vars), Ok(Value::Null), "an unset variable reads as null, as Flowable's does");

    let read_only = json!({"a": 1}).as_object().cloned().unwrap_or_default();
    let e = set.eval(&read_only).expect_err("a condition cannot set");
    assert!(e.message.contains("cannot be set here"), "{e}");
    let e = Expression::parse("${a.setVariable('b', 1)}")
        .unwrap_or_else(|e| panic!("{e}"))
        .eval(&read_only)
        .expect_err("not on a value");
    assert!(e.message.contains("cannot be called"), "{e}");
    let e = Expression::parse("${execution.setVariable('', 1)}")
        .unwrap_or_else(|e| panic!("{e}"))
        .eval(&vars)
        .expect_err("no name");
    assert!(e.message.contains("needs a variable name"), "{e}");
}
