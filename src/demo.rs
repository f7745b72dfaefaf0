//! `teleport-mattermost demo`: the real service against the built-in Teleport and Mattermost
//! simulators on loopback (mTLS gRPC and HTTP, real sockets), playing a scripted story and
//! printing what each side sees. `--keep-running` leaves it all up to explore with curl, and
//! first starts the playground (a web page to click through as Mattermost users and as a
//! Teleport admin) and prints its address.

use std::time::{Duration, Instant};

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use teleport_mattermost::app::{Application, Options};
use teleport_mattermost::config::Config;
use teleport_mattermost::review::command::short_id;
use teleport_mattermost::signals::Signals;
use teleport_mattermost_sim::mattermost::SimPost;
use teleport_mattermost_sim::playground::{self, Playground};
use teleport_mattermost_sim::teleport::fixtures::{
    self, PLUGIN_USER, REQUESTER, REVIEWER1, REVIEWER2,
};
use teleport_mattermost_sim::teleport::{
    NewRequest, SimAccessList, SimOptions, SimRole, Threshold,
};
use teleport_mattermost_sim::world::{World, WorldOptions};

const WAIT: Duration = Duration::from_secs(5);
const CLUSTER: &str = "demo.teleport.sh";

/// The simulators' world and the running service.
struct Stage {
    world: World,
    service: String,
    command_token: String,
    config_path: std::path::PathBuf,
    stop: CancellationToken,
    app: tokio::task::JoinHandle<anyhow::Result<()>>,
    started: Instant,
}

impl std::ops::Deref for Stage {
    type Target = World;

    fn deref(&self) -> &World {
        &self.world
    }
}

pub async fn run(keep_running: bool) -> anyhow::Result<()> {
    teleport_mattermost::install_crypto_provider();
    let stage = Stage::start().await?;
    let playground = if keep_running {
        Some(stage.playground().await?)
    } else {
        None
    };
    println!(
        "teleport-mattermost demo: the real service against the built-in simulators, over real sockets\n"
    );
    stage.say(&format!(
        "Teleport (simulated Auth Service, mTLS gRPC) at {}, cluster {CLUSTER} v18.11.0",
        stage.tp.addr()
    ));
    stage.say(&format!(
        "Mattermost (simulated REST API v4) at {}, bot @teleport",
        stage.mm.url()
    ));
    stage.say(&format!(
        "teleport-mattermost at {}: watching Teleport, ready",
        stage.service
    ));
    let result = story(&stage).await;
    match result {
        Ok(()) => {}
        Err(e) => {
            stage.stop.cancel();
            return Err(e);
        }
    }
    if let Some(playground) = &playground {
        explore(&stage, playground);
        tokio::signal::ctrl_c().await.ok();
    }
    stage.stop.cancel();
    match tokio::time::timeout(Duration::from_secs(20), stage.app).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => Err(e).context("the service task failed"),
        Err(_) => anyhow::bail!("the service did not stop in time"),
    }
}

impl Stage {
    async fn start() -> anyhow::Result<Self> {
        let started = Instant::now();
        let world = World::start_with(WorldOptions {
            teleport: SimOptions {
                cluster_name: CLUSTER.into(),
                server_version: "18.11.0".into(),
                advanced_access_workflows: true,
                proxy_public_addr: format!("{CLUSTER}:443"),
                ..SimOptions::default()
            },
            team: "acme".into(),
            channel: "access-requests".into(),
            ..WorldOptions::default()
        })
        .await
        .context("starting the simulators")?;
        // The plugin may also list access lists (review reminders).
        let tp = &world.tp;
        tp.add_role(SimRole::new("access-list-reader").allow(&["access_list"], &["list", "read"]));
        if let Some(mut plugin) = tp.user(PLUGIN_USER) {
            plugin.roles.push("access-list-reader".into());
            tp.upsert_user(plugin);
        }
        // Where the compressed reminder schedule escalates.
        let oncall = world.mm.add_channel(&world.team_id, "oncall");
        world.mm.add_channel_member(&oncall, world.mm.bot_id());
        // The service's own address must be in its config (buttons call back to it).
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let service = format!("http://127.0.0.1:{port}");
        let command_token = uuid::Uuid::new_v4().simple().to_string();
        let secret = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let text = world.config_text(&format!(
            "[role_to_recipients]\n\"*\" = [\"{}\"]\n\n\
             [http]\nlisten_addr = \"127.0.0.1:{port}\"\npublic_addr = \"{service}\"\n\n\
             [review]\nenabled = true\nsigning_secret = \"{secret}\"\ncommand_token = \"{command_token}\"\nrequire_reason = \"always\"\n\n\
             [access_lists]\ninterval = \"1s\"\n\n\
             [reminders.roles.auditor]\nremind_after = [\"1s\"]\nescalate_after = \"2s\"\nescalate_to = [\"acme/oncall\"]\n",
            world.channel_path,
        ));
        let config_path = world.dir.path().join("teleport-mattermost.toml");
        std::fs::write(&config_path, &text)?;
        let config = Config::from_toml(&text).map_err(|e| anyhow::anyhow!("{e}"))?;
        let app = Application::build(config, Options::default()).await?;
        let readiness = app.readiness();
        let stop = CancellationToken::new();
        let app = tokio::spawn(app.run_until_stopped(Signals::manual(stop.clone())));
        let deadline = Instant::now() + WAIT;
        while !readiness.is_ready() {
            if app.is_finished() || Instant::now() > deadline {
                stop.cancel();
                anyhow::bail!(
                    "the service did not become ready within {}s",
                    WAIT.as_secs()
                );
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(Self {
            world,
            service,
            command_token,
            config_path,
            stop,
            app,
            started,
        })
    }

    /// Starts the playground on this stage and prints its address, the first line of output.
    async fn playground(&self) -> anyhow::Result<Playground> {
        let playground = Playground::start(playground::Setup {
            teleport: self.tp.clone(),
            mattermost: self.mm.clone(),
            command_url: format!("{}/mattermost/command", self.service),
            command_token: self.command_token.clone(),
            channel_id: self.channel_id.clone(),
            users: [REQUESTER, REVIEWER1, REVIEWER2]
                .iter()
                .map(|name| (name.to_string(), self.user(name).to_string()))
                .collect(),
        })
        .await
        .context("starting the playground")?;
        println!("Playground: open {} in a browser\n", playground.url());
        Ok(playground)
    }

    fn user(&self, name: &str) -> &str {
        self.world.mm_user(name).unwrap_or_default()
    }

    fn say(&self, what: &str) {
        println!("[{:>5.2}s] {what}", self.started.elapsed().as_secs_f64());
    }

    fn show(&self, text: &str) {
        for line in text.lines() {
            println!("          ┃ {line}");
        }
    }

    async fn root_in(&self, channel: &str, n: usize) -> anyhow::Result<SimPost> {
        let channel = channel.to_string();
        self.mm
            .wait_for(WAIT, move |sim| {
                let roots: Vec<SimPost> = sim
                    .posts_in(&channel)
                    .into_iter()
                    .filter(|p| p.root_id.is_empty())
                    .collect();
                roots.get(n).cloned()
            })
            .await
            .map_err(|e| anyhow::anyhow!("{e}: no post in the channel"))
    }

    async fn post_matching(&self, id: &str, needle: &str) -> anyhow::Result<SimPost> {
        let (id, wanted) = (id.to_string(), needle.to_string());
        self.mm
            .wait_for(WAIT, move |sim| {
                sim.post(&id).filter(|p| p.message.contains(&wanted))
            })
            .await
            .map_err(|e| anyhow::anyhow!("{e}: the post never showed {needle:?}"))
    }

    async fn replies(&self, root: &str, n: usize) -> anyhow::Result<Vec<SimPost>> {
        let root = root.to_string();
        self.mm
            .wait_for(WAIT, move |sim| {
                Some(sim.thread_replies(&root)).filter(|r| r.len() >= n)
            })
            .await
            .map_err(|e| anyhow::anyhow!("{e}: expected {n} thread replies"))
    }
}

async fn story(s: &Stage) -> anyhow::Result<()> {
    println!("\n① {REQUESTER} asks Teleport for role `editor` (two approvals needed)");
    let mut req = NewRequest::new(REQUESTER, &[fixtures::REQUESTED_ROLE])
        .reason("Deploy the hotfix for INC-1234")
        .suggested_reviewers(&[REVIEWER2]);
    req.thresholds = Some(vec![Threshold {
        name: "two".into(),
        approve: 2,
        deny: 1,
    }]);
    let id = s.tp.create_request(req).id;
    let root = s.root_in(&s.channel_id, 0).await?;
    s.say("posted in ~access-requests:");
    s.show(&root.message);
    let dm =
        s.mm.dm_channel(s.mm.bot_id(), s.user(REVIEWER2))
            .context("no DM with the suggested reviewer")?;
    let dm_root = s.root_in(&dm, 0).await?;
    s.say(&format!(
        "and as a direct message to the suggested reviewer @reviewer2 (post {})",
        dm_root.id
    ));

    // The last characters: the first ones are a timestamp the next request shares.
    let short = short_id(&id);
    println!("\n② @reviewer1 types `/teleport approve {short} looks good`");
    let out =
        s.mm.run_slash_command(
            &format!("{}/mattermost/command", s.service),
            &s.command_token,
            s.user(REVIEWER1),
            &s.channel_id,
            &format!("approve {short} looks good"),
        )
        .await
        .map_err(|e| anyhow::anyhow!("slash command: {e}"))?;
    let reply = out
        .ephemeral
        .map(|e| e.message)
        .or_else(|| out.response["text"].as_str().map(str::to_string))
        .unwrap_or_default();
    s.say("only @reviewer1 sees:");
    s.show(&reply);
    let replies = s.replies(&root.id, 1).await?;
    s.say("thread reply under the post:");
    s.show(&replies[0].message);

    println!("\n③ @reviewer2 clicks Approve on the post and gives a reason in the dialog");
    let click =
        s.mm.click(&dm_root.id, "approve", s.user(REVIEWER2))
            .await
            .map_err(|e| anyhow::anyhow!("click: {e}"))?;
    let dialog =
        s.mm.dialogs()
            .into_iter()
            .find(|d| d.trigger_id == click.trigger_id);
    match dialog {
        Some(d) => {
            s.say(&format!(
                "dialog opened: {}",
                d.dialog["title"].as_str().unwrap_or("")
            ));
            let out =
                s.mm.submit_dialog(
                    &d,
                    s.user(REVIEWER2),
                    serde_json::json!({"reason": "ok for the incident"}),
                    false,
                )
                .await
                .map_err(|e| anyhow::anyhow!("dialog: {e}"))?;
            if let Some(err) = out.error() {
                anyhow::bail!("the dialog was refused: {err}");
            }
        }
        None => {
            let text = click.ephemeral.map(|e| e.message).unwrap_or_default();
            s.say("only @reviewer2 sees:");
            s.show(&text);
        }
    }

    println!("\n④ Teleport resolves the request: the posts turn APPROVED, the requester is told");
    let approved = s.post_matching(&root.id, "✅ APPROVED").await?;
    s.say("the post in ~access-requests now reads:");
    s.show(&approved.message);
    let (bot, requester) = (s.mm.bot_id().to_string(), s.user(REQUESTER).to_string());
    let requester_dm =
        s.mm.wait_for(WAIT, move |sim| sim.dm_channel(&bot, &requester))
            .await
            .map_err(|e| anyhow::anyhow!("{e}: the requester was not told"))?;
    let told = s.root_in(&requester_dm, 0).await?;
    s.say("direct message to @requester:");
    s.show(&told.message);

    println!("\n⑤ a second request is never reviewed and expires");
    let second =
        s.tp.create_request(
            NewRequest::new(REQUESTER, &[fixtures::REQUESTED_ROLE]).reason("Look at the logs"),
        )
        .id;
    let post = s.root_in(&s.channel_id, 1).await?;
    s.tp.delete_request(&second);
    s.post_matching(&post.id, "⌛ EXPIRED").await?;
    s.say(&format!(
        "request {} expired: its post now shows ⌛ EXPIRED",
        short_id(&second)
    ));

    println!(
        "\n⑥ a request for `auditor` waits: a reminder after 1s, an escalation to ~oncall after 2s (a compressed schedule)"
    );
    let third =
        s.tp.create_request(
            NewRequest::new(REQUESTER, &["auditor"])
                .reason("Audit the production database")
                .suggested_reviewers(&[REVIEWER2]),
        )
        .id;
    let waiting = s.root_in(&s.channel_id, 2).await?;
    let reminder = s.replies(&waiting.id, 1).await?;
    s.say("reminder in the post's thread:");
    s.show(&reminder[0].message);
    let oncall =
        s.mm.channels_of(s.mm.bot_id())
            .into_iter()
            .find(|c| c.name == "oncall")
            .context("no ~oncall channel")?;
    let escalated = s.root_in(&oncall.id, 0).await?;
    s.say("escalated: posted in ~oncall, with the same buttons:");
    s.show(&escalated.message);
    s.tp.approve(&third, "audited")
        .map_err(|e| anyhow::anyhow!("approve: {e}"))?;
    s.post_matching(&escalated.id, "✅ APPROVED").await?;
    s.say("approved in Teleport: the escalation post turns APPROVED too, and no more reminders");

    println!("\n⑦ an access list is due for review in 10 days: its owner is reminded");
    let due = time::OffsetDateTime::now_utc() + time::Duration::days(10);
    s.tp.upsert_access_list(
        SimAccessList::new("prod-admins", &[REVIEWER1], due)
            .title("Production admins")
            .members(7),
    );
    let (bot, owner) = (s.mm.bot_id().to_string(), s.user(REVIEWER1).to_string());
    let reminder =
        s.mm.wait_for(WAIT, move |sim| {
            let dm = sim.dm_channel(&bot, &owner)?;
            sim.posts_in(&dm)
                .into_iter()
                .find(|p| p.message.contains("Access list review reminder"))
        })
        .await
        .map_err(|e| anyhow::anyhow!("{e}: the access list owner was not reminded"))?;
    s.say("direct message to @reviewer1, the list's owner (once a week until it is reviewed):");
    s.show(&reminder.message);

    println!("\n⑧ Metrics, from {}/metrics", s.service);
    let metrics = reqwest::get(format!("{}/metrics", s.service))
        .await?
        .text()
        .await?;
    for line in metrics.lines().filter(|l| {
        l.starts_with("teleport_mattermost_posts_total")
            || l.starts_with("teleport_mattermost_post_updates_total")
            || l.starts_with("teleport_mattermost_events_total")
            || l.starts_with("teleport_mattermost_watch_up")
            || l.starts_with("teleport_mattermost_reviews_total")
            || l.starts_with("teleport_mattermost_access_list_reminders_total")
            || l.starts_with("teleport_mattermost_reminders_total")
    }) {
        println!("          {line}");
    }
    let audit = s.tp.review_audit();
    println!(
        "\nTeleport's audit: {} review(s), each by the human reviewer, submitted by `{PLUGIN_USER}` on their behalf:",
        audit.len()
    );
    for a in &audit {
        println!(
            "          author={} submitted_by={} on_behalf={}",
            a.author, a.submitted_by, a.on_behalf
        );
    }
    println!("\nDone in {:.2}s.", s.started.elapsed().as_secs_f64());
    Ok(())
}

/// What `--keep-running` prints: the addresses, the config, and a few things to try.
fn explore(s: &Stage, playground: &Playground) {
    println!("\nEverything keeps running; press Ctrl-C to stop.");
    println!(
        "  playground  {}  (act as @requester, @reviewer1, @reviewer2 or the unlinked @{}; create requests as the Teleport admin)",
        playground.url(),
        playground::UNLINKED_USERNAME
    );
    println!("  service     {}  (/healthz, /readyz, /metrics)", s.service);
    println!(
        "  Mattermost  {}  (REST API v4; bot token in the config)",
        s.mm.url()
    );
    println!(
        "  Teleport    {}  (mTLS gRPC; identity in {})",
        s.tp.addr(),
        s.dir.path().display()
    );
    println!("  config      {}", s.config_path.display());
    // The simulators' throwaway tokens: printing them is the point (paste and explore).
    if let Ok(text) = std::fs::read_to_string(&s.config_path) {
        println!("\n--- {} ---\n{text}---", s.config_path.display());
    }
    println!("\nTry:");
    println!(
        "  curl -s {}/metrics | grep teleport_mattermost_",
        s.service
    );
    let mm = s.mm.url().as_str().trim_end_matches('/').to_string();
    println!(
        "  curl -s -H 'Authorization: Bearer {}' {mm}/api/v4/users/me",
        s.mm.bot_token()
    );
    println!(
        "  curl -s -X POST {}/mattermost/command -d 'token={}&user_id={}&channel_id={}&text=pending'",
        s.service,
        s.command_token,
        s.user(REVIEWER1),
        s.channel_id
    );
    // The binary that runs now: after `cargo run` there is no `teleport-mattermost` on PATH.
    let bin = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "teleport-mattermost".into());
    println!("  {bin} check --config {}", s.config_path.display());
}
