use super::*;

fn rec(s: &str) -> Recipient {
    Recipient::parse(s).unwrap()
}

fn request(roles: &[&str], suggested: &[&str]) -> Env {
    Env {
        user: "requester@example.com".into(),
        roles: roles.iter().map(|s| s.to_string()).collect(),
        suggested_reviewers: suggested.iter().map(|s| s.to_string()).collect(),
        plugin_name: PLUGIN_NAME.into(),
        ..Env::default()
    }
}

fn upstream_table() -> Routing {
    // TestMattermostMessagePosting's config.
    Routing::new(BTreeMap::from([
        ("editor".to_string(), vec![rec("reviewer1@example.com")]),
        ("*".to_string(), vec![rec("team/fallback")]),
    ]))
}

fn recipients(r: &Routing, env: &Env) -> Vec<String> {
    r.recipients(env)
        .iter()
        .map(|x| x.recipient.to_string())
        .collect()
}

#[test]
fn role_entry_wins_over_wildcard_and_suggested_reviewers_are_added() {
    let r = upstream_table();
    let env = request(&["editor"], &["reviewer2@example.com"]);
    assert_eq!(
        recipients(&r, &env),
        ["reviewer1@example.com", "reviewer2@example.com"]
    );
}

#[test]
fn roles_without_an_entry_use_the_wildcard() {
    let r = upstream_table();
    let routed = r.recipients(&request(&["dba"], &[]));
    assert_eq!(routed.len(), 1);
    assert_eq!(routed[0].recipient, rec("team/fallback"));
    assert_eq!(routed[0].reasons, vec![Reason::Wildcard("dba".into())]);
}

#[test]
fn duplicates_are_posted_once_with_every_reason() {
    let r = upstream_table();
    let routed = r.recipients(&request(
        &["editor"],
        &["Reviewer1@example.com", "not-an-email"],
    ));
    assert_eq!(routed.len(), 1);
    assert_eq!(
        routed[0].reasons,
        vec![Reason::Role("editor".into()), Reason::SuggestedReviewer]
    );
}

#[test]
fn no_table_and_no_reviewers_means_no_recipients() {
    let r = Routing::new(BTreeMap::new());
    assert!(r.recipients(&request(&["editor"], &[])).is_empty());
}

fn rule(name: &str, condition: &str, recipients: &[&str]) -> RuleSpec {
    RuleSpec {
        name: name.into(),
        subjects: vec!["access_request".into()],
        condition: condition.into(),
        notification_name: PLUGIN_NAME.into(),
        recipients: recipients.iter().map(|s| s.to_string()).collect(),
    }
}

#[test]
fn recipients_from_a_matching_rule_replace_the_config_recipients() {
    let r = upstream_table();
    r.rules.put(rule(
        "dba-rule",
        "!is_empty(access_request.spec.roles)",
        &["team/dba", "@lead"],
    ));
    let routed = r.recipients(&request(&["editor"], &["reviewer2@example.com"]));
    assert_eq!(
        routed
            .iter()
            .map(|x| x.recipient.to_string())
            .collect::<Vec<_>>(),
        ["team/dba", "@lead"]
    );
    assert_eq!(routed[0].reasons, vec![Reason::Rule("dba-rule".into())]);
}

#[test]
fn config_recipients_return_after_the_rule_changes_subject_or_is_deleted() {
    let r = upstream_table();
    r.rules.put(rule("x", "true", &["team/dba"]));
    let env = request(&["editor"], &[]);
    assert_eq!(recipients(&r, &env), ["team/dba"]);
    let mut moved = rule("x", "true", &["team/dba"]);
    moved.subjects = vec!["access_list".into()];
    r.rules.put(moved);
    assert_eq!(recipients(&r, &env), ["reviewer1@example.com"]);
    r.rules.put(rule("x", "true", &["team/dba"]));
    r.rules.delete("x");
    assert_eq!(recipients(&r, &env), ["reviewer1@example.com"]);
}

#[test]
fn rules_for_other_plugins_and_broken_rules_do_not_match() {
    let r = upstream_table();
    let mut slack = rule("slack", "true", &["team/slack"]);
    slack.notification_name = "slack".into();
    r.rules.put(slack);
    r.rules.put(rule("broken", "contains(", &["team/broken"]));
    r.rules
        .put(rule("typed", "access_request.spec.roles", &["team/typed"]));
    assert_eq!(r.rules.len(), 2, "the slack rule is not ours");
    assert_eq!(
        recipients(&r, &request(&["editor"], &[])),
        ["reviewer1@example.com"]
    );
}

#[test]
fn a_rule_can_route_on_annotations_and_plugin_name() {
    let r = Routing::new(BTreeMap::new());
    r.rules.put(rule(
        "annotated",
        r#"plugin.spec.name == "mattermost" && contains(access_request.spec.system_annotations["mm-channel"], "ops")"#,
        &["team/ops"],
    ));
    let mut env = request(&["editor"], &[]);
    assert!(recipients(&r, &env).is_empty());
    env.system_annotations
        .insert("mm-channel".into(), vec!["ops".into()]);
    assert_eq!(recipients(&r, &env), ["team/ops"]);
}

#[test]
fn replace_all_drops_rules_missing_from_the_new_list() {
    let r = Routing::new(BTreeMap::new());
    r.rules.put(rule("old", "true", &["team/old"]));
    r.rules.replace_all([rule("new", "true", &["team/new"])]);
    assert_eq!(recipients(&r, &request(&["x"], &[])), ["team/new"]);
}
