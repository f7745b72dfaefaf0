use proptest::prelude::*;

use super::*;

fn env() -> Env {
    Env {
        user: "alice@example.com".into(),
        roles: vec!["editor".into(), "dba".into()],
        suggested_reviewers: vec!["bob@example.com".into()],
        system_annotations: BTreeMap::from([(
            "teleport.dev/notify".into(),
            vec!["team-a".into(), "team-b".into()],
        )]),
        request_reason: "deploy hotfix".into(),
        creation_time: "2026-11-24T10:00:00Z".into(),
        expiry: String::new(),
        plugin_name: "mattermost".into(),
    }
}

fn eval_str(cond: &str) -> bool {
    Predicate::parse(cond)
        .unwrap_or_else(|e| panic!("{e}"))
        .matches(&env())
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn evaluates_the_functions_rules_use() {
    let cases = [
        (r#"contains(access_request.spec.roles, "editor")"#, true),
        (r#"contains(access_request.spec.roles, "admin")"#, false),
        (
            r#"contains_any(access_request.spec.roles, set("admin", "dba"))"#,
            true,
        ),
        (
            r#"contains_any(access_request.spec.roles, set("admin"))"#,
            false,
        ),
        (
            r#"contains_all(access_request.spec.roles, set("editor", "dba"))"#,
            true,
        ),
        (r#"is_empty(access_request.spec.roles)"#, false),
        (r#"!is_empty(access_request.spec.roles)"#, true),
        (
            r#"is_empty(access_request.spec.system_annotations["missing"])"#,
            true,
        ),
        (
            r#"contains(access_request.spec.system_annotations["teleport.dev/notify"], "team-b")"#,
            true,
        ),
        (
            r#"equals(access_request.spec.user, "alice@example.com")"#,
            true,
        ),
        (r#"access_request.spec.user == "alice@example.com""#, true),
        (r#"access_request.spec.user != "alice@example.com""#, false),
        (r#"plugin.spec.name == "mattermost" && (true)"#, true),
        (r#"plugin.spec.name == "slack" && true"#, false),
        (
            r#"false || contains(access_request.spec.suggested_reviewers, "bob@example.com")"#,
            true,
        ),
        (r#"!(true && false)"#, true),
        (r#"set("a", "b") == set("b", "a")"#, true),
        (
            "contains(access_request.spec.request_reason, `hotfix`)",
            true,
        ),
        (r#"is_empty(access_request.spec.expiry)"#, true),
    ];
    for (cond, want) in cases {
        assert_eq!(eval_str(cond), want, "{cond}");
    }
}

#[test]
fn and_binds_tighter_than_or() {
    assert!(eval_str("true || false && false"));
    assert!(!eval_str("(true || false) && false"));
}

#[test]
fn parse_errors_name_the_problem_and_position() {
    for (cond, needle) in [
        ("contains(access_request.spec.roles", "expected ',' or ')'"),
        ("(true", "expected ')', found the end"),
        ("\"open", "unterminated string"),
        ("a $ b", "unexpected character '$'"),
        ("true true", "after the end"),
        ("", "unexpected end"),
        ("x.", "expected a name after '.'"),
    ] {
        let e = Predicate::parse(cond).unwrap_err();
        assert!(e.to_string().contains(needle), "{cond}: {e}");
    }
}

#[test]
fn type_and_name_errors_are_errors_not_matches() {
    for (cond, needle) in [
        ("user.traits", "unknown name \"user.traits\""),
        ("nope(1)", "unexpected character '1'"),
        ("nope()", "unknown function nope()"),
        (r#"contains("a")"#, "takes 2 argument(s)"),
        (
            r#"access_request.spec.roles == "x""#,
            "cannot compare a set with a string",
        ),
        (r#"access_request.spec.user"#, "not a boolean"),
        (r#"!access_request.spec.roles"#, "needs a boolean"),
        (r#"access_request.spec.roles["x"]"#, "cannot index a set"),
    ] {
        let r = Predicate::parse(cond).and_then(|p| p.matches(&env()));
        let e = r.expect_err(cond).to_string();
        assert!(e.contains(needle), "{cond}: {e}");
    }
}

#[test]
fn deep_nesting_is_refused_without_overflowing_the_stack() {
    let cond = format!("{}true{}", "(".repeat(5_000), ")".repeat(5_000));
    let e = Predicate::parse(&cond).unwrap_err();
    assert!(e.message.contains("nested deeper"), "{}", e.message);
    assert!(
        Predicate::parse(&cond)
            .unwrap_err()
            .message
            .contains("nested deeper")
    );
    let cond = format!("{}true", "!".repeat(5_000));
    assert!(
        Predicate::parse(&cond)
            .unwrap_err()
            .message
            .contains("nested deeper")
    );
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(s in "\\PC{0,200}") {
        if let Ok(p) = Predicate::parse(&s) {
            let _ = p.matches(&env());
        }
    }

    #[test]
    fn token_soup_never_panics(parts in proptest::collection::vec(prop_oneof![
        Just("("), Just(")"), Just("["), Just("]"), Just(","), Just("."), Just("!"),
        Just("&&"), Just("||"), Just("=="), Just("!="), Just("\"x\""), Just("true"),
        Just("access_request.spec.roles"), Just("set"), Just("contains"), Just("is_empty"),
        Just("access_request.spec.system_annotations"),
    ], 0..40)) {
        let s = parts.join(" ");
        if let Ok(p) = Predicate::parse(&s) {
            let _ = p.matches(&env());
        }
    }
}

#[test]
fn the_environment_of_a_request_carries_what_conditions_read() {
    use time::macros::datetime;
    let r = crate::access::AccessRequest {
        user: "alice".into(),
        roles: vec!["editor".into()],
        suggested_reviewers: vec!["bob".into()],
        system_annotations: BTreeMap::from([("team".into(), vec!["db".into()])]),
        request_reason: "oncall".into(),
        created: Some(datetime!(2026-03-02 14:00 UTC)),
        ..Default::default()
    };
    let env = Env::from(&r);
    assert_eq!(env.user, "alice");
    assert_eq!(env.creation_time, "2026-03-02T14:00:00Z");
    assert_eq!(env.expiry, "", "unset times are empty");
    assert_eq!(env.plugin_name, "mattermost");
    let p = Predicate::parse(
        r#"contains(access_request.spec.roles, "editor") && contains(access_request.spec.system_annotations["team"], "db") && plugin.spec.name == "mattermost""#,
    )
    .unwrap();
    assert!(p.matches(&env).unwrap());
}
