use std::io::Write;

use secrecy::ExposeSecret;

use super::*;

/// A temp dir with an identity file and a token file, and a config pointing at them.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("auth_id"), "identity").unwrap();
        std::fs::write(dir.path().join("token"), "  file-token-123\n").unwrap();
        Self { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    fn write(&self, toml: &str) -> PathBuf {
        let p = self.dir.path().join("config.toml");
        let mut f = std::fs::File::create(&p).unwrap();
        f.write_all(toml.as_bytes()).unwrap();
        p
    }

    fn minimal(&self) -> String {
        format!(
            "[teleport]\nidentity = {:?}\n[mattermost]\nurl = \"https://mm.example.com\"\ntoken = \"secret-token\"\n",
            self.path("auth_id")
        )
    }

    fn load(&self, toml: &str) -> Result<Config, ConfigError> {
        Config::load(&self.write(toml), Vec::<(String, String)>::new())
    }

    fn problems(&self, toml: &str) -> Vec<String> {
        self.load(toml)
            .expect_err("config should be refused")
            .problems
    }
}

fn has(problems: &[String], needle: &str) {
    assert!(
        problems.iter().any(|p| p.contains(needle)),
        "no problem contains {needle:?}: {problems:#?}"
    );
}

#[test]
fn minimal_config_gets_the_upstream_defaults() {
    let f = Fixture::new();
    let c = f.load(&f.minimal()).unwrap();
    assert_eq!(c.teleport.addr, "localhost:3025");
    assert_eq!(
        c.teleport.refresh_identity_interval,
        Duration::from_secs(60)
    );
    assert!(!c.teleport.refresh_identity);
    assert_eq!(c.log.output, LogOutput::Stderr);
    assert_eq!(c.log.severity, tracing::Level::INFO);
    assert_eq!(c.log.format, LogFormat::Text);
    assert_eq!(c.http.listen_addr.to_string(), "0.0.0.0:8081");
    assert!(c.review.is_none(), "review is off by default");
    assert_eq!(c.bridge.concurrency, 128);
    assert!(c.role_to_recipients.is_empty());
    assert_eq!(c.mattermost.token.expose_secret(), "secret-token");
    assert!(
        c.mattermost.notify_requester,
        "requester DMs are on by default"
    );
    let off = f
        .load(&format!("{}notify_requester = false\n", f.minimal()))
        .unwrap();
    assert!(!off.mattermost.notify_requester);
}

#[test]
fn missing_url_names_the_key_and_the_fix() {
    let f = Fixture::new();
    let toml = f
        .minimal()
        .replace("url = \"https://mm.example.com\"\n", "");
    has(
        &f.problems(&toml),
        "`mattermost.url` is missing: set it to your Mattermost base URL",
    );
}

#[test]
fn url_must_be_http_or_https() {
    let f = Fixture::new();
    let toml = f
        .minimal()
        .replace("https://mm.example.com", "ftp://mm.example.com");
    has(&f.problems(&toml), "use an http:// or https:// URL");
}

#[test]
fn partial_tls_trio_lists_given_and_missing_settings() {
    let f = Fixture::new();
    let toml = format!(
        "[teleport]\nclient_key = {:?}\n[mattermost]\nurl = \"https://mm\"\ntoken = \"t\"\n",
        f.path("auth_id")
    );
    has(
        &f.problems(&toml),
        "teleport setting(s) `client_key` are provided but setting(s) `client_crt`, `root_cas` are missing",
    );
}

#[test]
fn identity_and_key_pair_are_mutually_exclusive() {
    let f = Fixture::new();
    let toml = f.minimal().replace(
        "[mattermost]",
        &format!("client_crt = {:?}\n[mattermost]", f.path("auth_id")),
    );
    has(
        &f.problems(&toml),
        "`teleport.identity` is mutually exclusive with",
    );
}

#[test]
fn refresh_requires_identity() {
    let f = Fixture::new();
    let p = f.path("auth_id");
    let toml = format!(
        "[teleport]\nclient_key = {p:?}\nclient_crt = {p:?}\nroot_cas = {p:?}\nrefresh_identity = true\n[mattermost]\nurl = \"https://mm\"\ntoken = \"t\"\n"
    );
    has(
        &f.problems(&toml),
        "`teleport.refresh_identity` requires that `teleport.identity` be set",
    );
}

#[test]
fn no_credentials_says_how_to_export_an_identity() {
    let f = Fixture::new();
    let toml = "[mattermost]\nurl = \"https://mm\"\ntoken = \"t\"\n";
    has(&f.problems(toml), "no credentials configured");
}

#[test]
fn bad_severity_lists_the_valid_ones() {
    let f = Fixture::new();
    let toml = format!("{}[log]\nseverity = \"loud\"\n", f.minimal());
    has(
        &f.problems(&toml),
        "`log.severity` is \"loud\": use one of info, warn, error, debug, trace",
    );
}

#[test]
fn severity_is_case_insensitive_with_upstream_aliases() {
    let f = Fixture::new();
    for (given, want) in [
        ("INFO", tracing::Level::INFO),
        ("Err", tracing::Level::ERROR),
        ("warning", tracing::Level::WARN),
        ("DEBUG", tracing::Level::DEBUG),
    ] {
        let c = f
            .load(&format!("{}[log]\nseverity = {given:?}\n", f.minimal()))
            .unwrap();
        assert_eq!(c.log.severity, want, "{given}");
    }
}

#[test]
fn unknown_keys_are_all_named_with_the_file() {
    let f = Fixture::new();
    let toml = f
        .minimal()
        .replace("[mattermost]", "adress = \"x\"\n[mattermost]")
        + "tokn = \"y\"\n[extra]\nx = 1\n";
    let problems = f.problems(&toml);
    let file = f.path("config.toml");
    has(
        &problems,
        &format!("unknown key `teleport.adress` in {file}"),
    );
    has(
        &problems,
        &format!("unknown key `mattermost.tokn` in {file}"),
    );
    has(&problems, "unknown key `extra`");
    has(
        &problems,
        "known keys of [mattermost]: url, token, recipients, timeout, notify_requester",
    );
}

#[test]
fn every_problem_is_reported_not_just_the_first() {
    let f = Fixture::new();
    let toml = "[log]\nseverity = \"x\"\nformat = \"xml\"\n[mattermost]\n";
    let problems = f.problems(toml);
    has(&problems, "`mattermost.url` is missing");
    has(&problems, "`mattermost.token` is missing");
    has(&problems, "`log.severity`");
    has(&problems, "`log.format` is \"xml\"");
    has(&problems, "no credentials configured");
}

#[test]
fn token_file_missing_names_the_file_not_the_value() {
    let f = Fixture::new();
    let toml = f
        .minimal()
        .replace("\"secret-token\"", "\"/nonexistent/dir/mm_token\"");
    let problems = f.problems(&toml);
    has(
        &problems,
        "`mattermost.token` cannot read the file /nonexistent/dir/mm_token",
    );
}

#[test]
fn token_from_file_is_trimmed() {
    let f = Fixture::new();
    let toml = f
        .minimal()
        .replace("\"secret-token\"", &format!("{:?}", f.path("token")));
    let c = f.load(&toml).unwrap();
    assert_eq!(c.mattermost.token.expose_secret(), "file-token-123");
}

#[test]
fn secrets_never_appear_in_debug_output() {
    let f = Fixture::new();
    let toml = format!(
        "{}[http]\npublic_addr = \"https://tm.example.com\"\n[review]\nenabled = true\nsigning_secret = \"0123456789abcdef0123456789abcdef-hmac\"\ncommand_token = [\"cmd-token-a\", \"cmd-token-b\"]\n",
        f.minimal()
    );
    let c = f.load(&toml).unwrap();
    let dbg = format!("{c:?}");
    for secret in [
        "secret-token",
        "0123456789abcdef",
        "cmd-token-a",
        "cmd-token-b",
    ] {
        assert!(!dbg.contains(secret), "{secret} leaked into Debug: {dbg}");
    }
    assert_eq!(c.review.expect("review is enabled").command_tokens.len(), 2);
}

#[test]
fn env_overrides_a_nested_key() {
    let f = Fixture::new();
    let path = f.write(&f.minimal());
    let env = [
        (
            "TELEPORT_MATTERMOST_MATTERMOST__URL".to_string(),
            "https://override.example.com".to_string(),
        ),
        ("TELEPORT_MATTERMOST_LOG__SEVERITY".into(), "debug".into()),
        ("UNRELATED".into(), "x".into()),
    ];
    let c = Config::load(&path, env).unwrap();
    assert_eq!(c.mattermost.url.as_str(), "https://override.example.com/");
    assert_eq!(c.log.severity, tracing::Level::DEBUG);
}

#[test]
fn unknown_env_override_names_the_variable() {
    let f = Fixture::new();
    let path = f.write(&f.minimal());
    let env = [(
        "TELEPORT_MATTERMOST_MATTERMOST__TOKN".to_string(),
        "x".to_string(),
    )];
    let problems = Config::load(&path, env).unwrap_err().problems;
    has(&problems, "TELEPORT_MATTERMOST_MATTERMOST__TOKN");
}

#[test]
fn auth_server_is_a_deprecated_alias() {
    let f = Fixture::new();
    let toml = f.minimal().replace(
        "[teleport]",
        "[teleport]\nauth_server = \"auth.example.com:3025\"",
    );
    let c = f.load(&toml).unwrap();
    assert_eq!(c.teleport.addr, "auth.example.com:3025");
    assert!(c.warnings[0].contains("deprecated"));
    let toml = toml.replace("[teleport]", "[teleport]\naddr = \"proxy.example.com:443\"");
    assert_eq!(
        f.load(&toml).unwrap().teleport.addr,
        "proxy.example.com:443"
    );
}

#[test]
fn role_to_recipients_takes_a_string_or_a_list() {
    let f = Fixture::new();
    let toml = format!(
        "{}[role_to_recipients]\n\"*\" = \"team/fallback\"\neditor = [\"reviewer@example.com\", \"@bob\"]\n",
        f.minimal()
    );
    let c = f.load(&toml).unwrap();
    assert_eq!(c.role_to_recipients["*"].len(), 1);
    assert_eq!(
        c.role_to_recipients["editor"],
        vec![
            Recipient::Email("reviewer@example.com".into()),
            Recipient::Username("bob".into())
        ]
    );
    let bad = format!("{}[role_to_recipients]\neditor = 5\n", f.minimal());
    has(
        &f.problems(&bad),
        "is a number: use a string or a list of strings",
    );
}

#[test]
fn malformed_recipients_are_skipped_with_the_entry_and_the_fix_named() {
    let f = Fixture::new();
    // Upstream's own test config: the Go plugin starts with it and skips "fallback".
    let toml = format!(
        "{}[role_to_recipients]\n\"*\" = [\"fallback\"]\neditor = [\"team/chan\", \"placeholder\"]\n",
        f.minimal()
    );
    let c = f.load(&toml).unwrap();
    assert!(c.role_to_recipients["*"].is_empty());
    assert_eq!(c.role_to_recipients["editor"].len(), 1);
    assert_eq!(c.skipped_recipients.len(), 2, "{:#?}", c.skipped_recipients);
    let fallback = &c.skipped_recipients[0];
    assert_eq!(
        fallback,
        "`role_to_recipients.\"*\"` entry \"fallback\" is skipped: it is neither team/channel, an e-mail, nor @username; write \"team/channel\", an e-mail address or \"@username\", or remove it"
    );
    assert!(c.skipped_recipients[1].contains("\"placeholder\""));
    let good = f.load(&f.minimal()).unwrap();
    assert!(good.skipped_recipients.is_empty());
}

const SECRET: &str = "abcdefghijklmnopqrstuvwxyz0123456789";

fn never_shows(problems: &[String], secret: &str) {
    for p in problems {
        assert!(!p.contains(secret), "a problem shows the secret: {p}");
    }
}

#[test]
fn a_syntax_error_on_a_secret_line_names_line_column_and_key_but_never_the_value() {
    let f = Fixture::new();
    for (section, key) in [
        ("mattermost", "token"),
        ("review", "signing_secret"),
        ("review", "command_token"),
    ] {
        let toml = with_key(&f, section, &format!("{key} = \"{SECRET}"));
        let problems = f.problems(&toml);
        never_shows(&problems, SECRET);
        never_shows(&problems, &SECRET[..8]);
        assert_eq!(problems.len(), 1, "{problems:#?}");
        let p = &problems[0];
        assert!(
            p.starts_with("not valid TOML at line ")
                && p.contains(&format!("(key `{section}.{key}`)")),
            "{p}"
        );
        assert!(!p.contains('\n'), "one line, no dangling `in file`: {p:?}");
    }
    // The same through `from_toml` (demo, tests).
    let e = Config::from_toml(&format!("[mattermost]\ntoken = \"{SECRET}\n")).unwrap_err();
    never_shows(&e.problems, SECRET);
    assert_eq!(
        e.problems,
        ["not valid TOML at line 2, column 46 (key `mattermost.token`): invalid basic string"]
    );
}

#[test]
fn a_wrong_type_names_the_key_and_the_type_never_the_value() {
    let f = Fixture::new();
    let toml = f
        .minimal()
        .replace("token = \"secret-token\"", "token = 1234567890");
    let problems = f.problems(&toml);
    never_shows(&problems, "1234567890");
    assert_eq!(
        problems,
        [format!(
            "`mattermost.token` in {} is an integer: write a string",
            f.dir.path().join("config.toml").display()
        )]
    );
    // From the environment too.
    let env = vec![(
        "TELEPORT_MATTERMOST_REVIEW__SIGNING_SECRET".to_string(),
        "1234567890".to_string(),
    )];
    let e = Config::load(&f.write(&f.minimal()), env).unwrap_err();
    never_shows(&e.problems, "1234567890");
    has(
        &e.problems,
        "`review.signing_secret` in environment variable TELEPORT_MATTERMOST_REVIEW__SIGNING_SECRET is an integer: write a string",
    );
}

#[test]
fn a_mattermost_url_with_credentials_is_refused_without_showing_them() {
    let f = Fixture::new();
    for url in [
        "https://admin:hunter2pw@mm.example.com",
        "https://admin@mm.example.com/x",
    ] {
        let toml = f.minimal().replace("https://mm.example.com", url);
        let problems = f.problems(&toml);
        never_shows(&problems, "hunter2pw");
        never_shows(&problems, "admin");
        has(
            &problems,
            "`mattermost.url` carries credentials (user:password@) in \"https://***@mm.example.com",
        );
    }
}

#[test]
fn every_duration_key_has_a_range_named_in_the_problem() {
    let f = Fixture::new();
    for (section, key, documented, range) in [
        (
            "teleport",
            "refresh_identity_interval",
            "from 1s to 24h. Default: \"1m\"",
            "from 1s to 24h; the default is 1m",
        ),
        (
            "mattermost",
            "timeout",
            "from 1s to 5m. Default: \"10s\"",
            "from 1s to 5m; the default is 10s",
        ),
        (
            "bridge",
            "resync_interval",
            "from 1s to 24h. Default: \"5m\"",
            "from 1s to 24h; the default is 5m",
        ),
    ] {
        for bad in ["1ns", "999ms", "25h"] {
            let toml = with_key(&f, section, &format!("{key} = \"{bad}\""));
            has(
                &f.problems(&toml),
                &format!("`{section}.{key}` is {bad}, out of range: use a duration {range}"),
            );
        }
        // One second is the floor everywhere (reminders later need it too).
        f.load(&with_key(&f, section, &format!("{key} = \"1s\"")))
            .unwrap();
        // The example `configure` prints documents the range.
        assert!(
            EXAMPLE.contains(documented),
            "the example does not document {section}.{key}: {documented}"
        );
    }
    let toml = with_key(&f, "bridge", "concurrency = 0");
    has(
        &f.problems(&toml),
        "`bridge.concurrency` is 0, out of range: use a number from 1 to 10000; the default is 128",
    );
    assert!(EXAMPLE.contains("from 1 to 10000. Default: 128"));
}

/// The minimal config with `line` added to `[section]`.
fn with_key(f: &Fixture, section: &str, line: &str) -> String {
    let base = f.minimal();
    let header = format!("[{section}]\n");
    if base.contains(&header) {
        base.replace(&header, &format!("{header}{line}\n"))
    } else {
        format!("{base}{header}{line}\n")
    }
}

#[test]
fn log_output_must_be_a_stream_or_a_file_in_an_existing_directory() {
    let f = Fixture::new();
    let missing = f.dir.path().join("no-such-dir").join("tm.log");
    let toml = with_key(
        &f,
        "log",
        &format!("output = {:?}", missing.display().to_string()),
    );
    has(
        &f.problems(&toml),
        &format!(
            "`log.output` is {}, in a directory that does not exist",
            missing.display()
        ),
    );
    let dir = f.dir.path().display().to_string();
    has(
        &f.problems(&with_key(&f, "log", &format!("output = {dir:?}"))),
        "a directory: name a file in it",
    );
    let file = f.dir.path().join("tm.log");
    let c = f
        .load(&with_key(
            &f,
            "log",
            &format!("output = {:?}", file.display().to_string()),
        ))
        .unwrap();
    assert_eq!(c.log.output, LogOutput::File(file));
    for stream in ["stdout", "stderr"] {
        f.load(&with_key(&f, "log", &format!("output = {stream:?}")))
            .unwrap();
    }
}

#[test]
fn a_blank_user_id_trait_is_refused() {
    let f = Fixture::new();
    has(
        &f.problems(&with_key(&f, "review", "user_id_trait = \"  \"")),
        "`review.user_id_trait` is blank: name the Teleport user trait",
    );
}

#[test]
fn problems_name_the_key_the_operator_wrote() {
    let f = Fixture::new();
    let toml = with_key(&f, "teleport", "auth_server = \"no-port\"");
    let problems = f.problems(&toml);
    has(
        &problems,
        "`teleport.auth_server` is \"no-port\"; write host:port",
    );
    assert!(
        problems.iter().all(|p| !p.contains("teleport.addr`")),
        "{problems:#?}"
    );
    let c = f
        .load(&with_key(
            &f,
            "teleport",
            "auth_server = \"auth.example.com:3025\"",
        ))
        .unwrap();
    assert_eq!(c.teleport_addr_key, "teleport.auth_server");
    assert_eq!(
        f.load(&f.minimal()).unwrap().teleport_addr_key,
        "teleport.addr"
    );
}

#[test]
fn mattermost_recipients_replace_the_role_table_with_a_warning() {
    let f = Fixture::new();
    let toml = format!(
        "{}recipients = [\"t/c\"]\n[role_to_recipients]\neditor = \"a@b.co\"\n",
        f.minimal()
    );
    let c = f.load(&toml).unwrap();
    assert_eq!(c.role_to_recipients.keys().collect::<Vec<_>>(), vec!["*"]);
    assert!(c.warnings.iter().any(|w| w.contains("replaces the whole")));
}

#[test]
fn durations_are_human_strings() {
    let f = Fixture::new();
    let toml = f.minimal().replace(
        "[mattermost]",
        "refresh_identity = true\nrefresh_identity_interval = \"30s\"\n[mattermost]",
    );
    let c = f.load(&toml).unwrap();
    assert_eq!(
        c.teleport.refresh_identity_interval,
        Duration::from_secs(30)
    );
    let bad = toml.replace("\"30s\"", "30");
    has(&f.problems(&bad), "write a duration string such as \"30s\"");
}

#[test]
fn review_needs_a_secret_and_a_public_address() {
    let f = Fixture::new();
    let toml = format!("{}[review]\nenabled = true\n", f.minimal());
    let problems = f.problems(&toml);
    has(
        &problems,
        "`review.signing_secret` is required when `review.enabled = true`",
    );
    has(
        &problems,
        "`http.public_addr` is required when `review.enabled = true`",
    );
    let short = format!("{}[review]\nsigning_secret = \"short\"\n", f.minimal());
    has(&f.problems(&short), "shorter than 32 characters");
}

#[test]
fn enabled_review_carries_its_secret_callback_urls_and_defaults() {
    let f = Fixture::new();
    let toml = format!(
        "{}[http]\npublic_addr = \"https://tm.example.com:8081\"\n[review]\nenabled = true\nsigning_secret = \"0123456789abcdef0123456789abcdef\"\n",
        f.minimal()
    );
    let r = f.load(&toml).unwrap().review.expect("review is enabled");
    assert_eq!(r.public_addr.as_str(), "https://tm.example.com:8081/");
    assert_eq!(
        r.action_url.as_str(),
        "https://tm.example.com:8081/mattermost/action"
    );
    assert_eq!(
        r.dialog_url.as_str(),
        "https://tm.example.com:8081/mattermost/dialog"
    );
    assert_eq!(
        r.signing_secret.expose_secret(),
        "0123456789abcdef0123456789abcdef"
    );
    assert_eq!(r.user_id_trait, "mattermost_user_id");
    assert_eq!(r.require_reason, RequireReason::Deny);
    assert!(!r.allow_email_username_match);
    assert!(r.command_tokens.is_empty() && r.link_only_roles.is_empty());
    // The same keys without `enabled = true`: no review at all.
    let off = f.load(&toml.replace("enabled = true\n", "")).unwrap();
    assert!(off.review.is_none());
}

#[test]
fn callback_sources_are_cidr_networks() {
    let f = Fixture::new();
    let toml = format!(
        "{}[http]\ncallback_allowed_sources = [\"10.0.0.0/8\", \"::1\", \"nope\"]\n",
        f.minimal()
    );
    has(
        &f.problems(&toml),
        "has \"nope\", which is not a CIDR network",
    );
    let net = IpNet::parse("10.0.0.0/8").unwrap();
    assert!(net.contains("10.1.2.3".parse().unwrap()));
    assert!(net.contains("::ffff:10.1.2.3".parse().unwrap()));
    assert!(!net.contains("11.0.0.1".parse().unwrap()));
    assert!(
        IpNet::parse("::1")
            .unwrap()
            .contains("::1".parse().unwrap())
    );
    assert!(IpNet::parse("10.0.0.0/33").is_none());
}

#[test]
fn missing_config_file_says_how_to_create_one() {
    let problems = Config::load(Path::new("/nonexistent/tm.toml"), Vec::new())
        .unwrap_err()
        .problems;
    has(
        &problems,
        "teleport-mattermost configure > /nonexistent/tm.toml",
    );
}

#[test]
fn configure_output_loads_once_its_paths_exist() {
    let f = Fixture::new();
    let dir = f.dir.path().display().to_string();
    let text = EXAMPLE.replace("/var/lib/teleport/plugins/mattermost", &dir);
    std::fs::write(f.dir.path().join("mattermost_token"), "tok").unwrap();
    let c = f.load(&text).unwrap();
    assert!(c.teleport.refresh_identity);
    assert_eq!(c.teleport.addr, "teleport.example.com:443");
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    // The example documents every key the loader knows.
    for (section, keys) in raw::SECTIONS {
        assert!(
            text.contains(&format!("[{section}]")),
            "[{section}] missing"
        );
        for key in *keys {
            assert!(
                text.contains(&format!("{key} =")),
                "{section}.{key} missing"
            );
        }
    }
}

#[test]
fn proxy_ca_must_be_a_pem_bundle() {
    let f = Fixture::new();
    let toml = f.minimal().replace(
        "[mattermost]",
        &format!("proxy_ca = {:?}\n[mattermost]", f.path("token")),
    );
    has(&f.problems(&toml), "`teleport.proxy_ca` file");
    let toml = f.minimal().replace(
        "[mattermost]",
        "proxy_ca = \"/nonexistent/ca.pem\"\n[mattermost]",
    );
    has(
        &f.problems(&toml),
        "`teleport.proxy_ca` points to /nonexistent/ca.pem, which cannot be read",
    );
}

#[test]
fn reminders_are_off_without_the_section_and_read_with_role_overrides() {
    let f = Fixture::new();
    assert!(f.load(&f.minimal()).unwrap().reminders.is_none());
    let toml = format!(
        "{}[reminders]\nremind_after = [\"2h\", \"1s\", \"30m\"]\nescalate_after = \"1h\"\nescalate_to = [\"team/oncall\", \"@lead\"]\n\
         [reminders.roles.prod-admin]\nescalate_after = \"15m\"\nmention_channel = true\n",
        f.minimal()
    );
    let r = f.load(&toml).unwrap().reminders.unwrap();
    let s = Duration::from_secs;
    assert_eq!(
        r.default.remind_after,
        vec![s(1), s(1800), s(7200)],
        "sorted"
    );
    assert_eq!(r.default.escalate_after, Some(s(3600)));
    assert_eq!(r.default.expiry_notice, s(900), "15m by default");
    assert!(!r.default.mention_channel);
    let prod = &r.roles["prod-admin"];
    assert_eq!(prod.escalate_after, Some(s(900)));
    assert!(prod.mention_channel);
    assert_eq!(
        prod.escalate_to, r.default.escalate_to,
        "left-out keys are the default's"
    );
    assert_eq!(prod.remind_after, r.default.remind_after);
    // The example `configure` prints documents the section and its bounds.
    for documented in [
        "[reminders]",
        "remind_after",
        "escalate_after",
        "escalate_to",
        "mention_channel",
        "expiry_notice = \"15m\"",
        "[reminders.roles.prod-admin]",
        "from 1s to 7 days",
    ] {
        assert!(EXAMPLE.contains(documented), "{documented}");
    }
}

#[test]
fn reminder_problems_name_the_key_and_the_fix() {
    let f = Fixture::new();
    let toml = format!(
        "{}[reminders]\nremind_after = [\"30m\", \"soon\", \"999ms\"]\nescalate_after = \"8d\"\nexpiry_notice = 5\nmention_channel = \"yes\"\nescalate_to = [\"not a recipient\"]\n\
         [reminders.roles.dba]\nescalate_afterr = \"1m\"\n[reminders.roles.web]\nescalate_after = \"1m\"\nescalate_to = []\n",
        f.minimal()
    );
    let p = f.problems(&toml);
    has(
        &p,
        "`reminders.remind_after` is \"soon\", not a duration: write e.g. \"30s\" or \"5m\" (use a duration from 1s to 168h)",
    );
    has(
        &p,
        "`reminders.remind_after` is 999ms, out of range: use a duration from 1s to 168h",
    );
    has(
        &p,
        "`reminders.escalate_after` is 192h, out of range: use a duration from 1s to 168h",
    );
    has(
        &p,
        "`reminders.expiry_notice` is a number: write a duration string such as \"30s\" (use a duration from 1s to 168h; the default is 15m)",
    );
    has(
        &p,
        "`reminders.mention_channel` is a string: write true or false",
    );
    has(
        &p,
        "`reminders.escalate_to` entry \"not a recipient\" is skipped",
    );
    has(
        &p,
        "unknown key `reminders.roles.dba.escalate_afterr`: remove it or fix its spelling",
    );
    has(
        &p,
        "`reminders.roles.web.escalate_after` is set but nobody gets the escalation: set `reminders.roles.web.escalate_to`",
    );
    // One second is allowed everywhere (trials, black-box tests).
    let fast = format!(
        "{}[reminders]\nremind_after = [\"1s\"]\nescalate_after = \"1s\"\nescalate_to = [\"@lead\"]\nexpiry_notice = \"1s\"\n",
        f.minimal()
    );
    f.load(&fast).unwrap();
}
