//! The services as real processes around a private redis-server: two
//! inference replicas (one killed mid-run), a reward service and the
//! learner (also killed and restarted from its checkpoint).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use r1_proto::pb;
use r1_proto::pb::learner_client::LearnerClient;
use r1_testkit::{RedisServer, ServiceProcess};

const RUN: &str = "e2e";

const LEARNER_CONFIG: &str = r#"
seed = 5
[task.rl]
min_digits = 1
max_digits = 2
[grpo]
steps = 6
prompts_per_step = 4
group_size = 4
max_new_tokens = 16
max_versions_ahead = 1
max_staleness = 1
[runtime]
checkpoint_every = 2
"#;

/// A workspace binary next to this test's executable.
fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: build the services first (cargo build --workspace, which scripts/test does)",
        path.display()
    );
    path
}

struct Cluster {
    redis: RedisServer,
    dir: tempfile::TempDir,
    model: PathBuf,
    config: PathBuf,
}

impl Cluster {
    fn new() -> Self {
        let redis = RedisServer::start();
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("micro");
        r1_learner::preset::init(r1_learner::preset::Preset::Micro, &model, 5).unwrap();
        let config = dir.path().join("learner.toml");
        std::fs::write(&config, LEARNER_CONFIG).unwrap();
        Self {
            redis,
            dir,
            model,
            config,
        }
    }

    fn common(&self) -> Vec<String> {
        vec![
            "--redis-url".into(),
            self.redis.url(),
            "--run-id".into(),
            RUN.into(),
        ]
    }

    fn reward(&self) -> ServiceProcess {
        let mut args = self.common();
        args.extend(
            [
                "--replica-id",
                "reward-0",
                "--grpc-addr",
                "127.0.0.1:0",
                "--http-addr",
                "127.0.0.1:0",
                "--admin-addr",
                "127.0.0.1:0",
            ]
            .map(String::from),
        );
        start(&binary("r1-reward"), &args)
    }

    fn inference(&self, replica: &str) -> ServiceProcess {
        let mut args = self.common();
        args.extend(
            [
                "--replica-id",
                replica,
                "--grpc-addr",
                "127.0.0.1:0",
                "--admin-addr",
                "127.0.0.1:0",
                "--jobs-in-flight",
                "2",
                "--reclaim-idle-ms",
                "1500",
            ]
            .map(String::from),
        );
        args.push("--weights-cache".into());
        args.push(
            self.dir
                .path()
                .join(format!("cache-{replica}"))
                .display()
                .to_string(),
        );
        start(&binary("r1-inference"), &args)
    }

    fn learner(&self) -> ServiceProcess {
        let mut args = self.common();
        args.extend(
            ["--grpc-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"].map(String::from),
        );
        args.push("--config".into());
        args.push(self.config.display().to_string());
        args.push("--model".into());
        args.push(self.model.display().to_string());
        args.push("--out".into());
        args.push(self.dir.path().join("learner").display().to_string());
        start(&binary("r1-learner"), &args)
    }

    fn redis(&self) -> redis::Connection {
        redis::Client::open(self.redis.url())
            .unwrap()
            .get_connection()
            .unwrap()
    }
}

fn start(binary: &Path, args: &[String]) -> ServiceProcess {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ServiceProcess::start(binary, &args, &[("R1_LOG", "warn")])
}

async fn learner_step(learner: &ServiceProcess) -> u64 {
    let mut client = LearnerClient::connect(format!("http://{}", learner.ready_field("grpc")))
        .await
        .unwrap();
    client
        .status(pb::LearnerStatusRequest {})
        .await
        .unwrap()
        .into_inner()
        .step
}

/// Waits (polling the learner's status) until it has taken `step` steps.
async fn wait_for_step(learner: &ServiceProcess, step: u64) {
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut poll = tokio::time::interval(Duration::from_millis(100));
    while learner_step(learner).await < step {
        assert!(
            Instant::now() < deadline,
            "the learner did not reach step {step}"
        );
        poll.tick().await;
    }
}

fn finished(learner: &ServiceProcess) -> serde_json::Value {
    let line = learner
        .wait_for_line("\"finished\"", Duration::from_secs(300))
        .expect("the learner did not finish");
    serde_json::from_str(&line).unwrap()
}

/// Entries of a stream: id → (field → bytes).
fn entries(conn: &mut redis::Connection, stream: &str) -> Vec<(String, HashMap<String, Vec<u8>>)> {
    let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(stream)
        .arg("-")
        .arg("+")
        .query(conn)
        .unwrap();
    reply
        .ids
        .into_iter()
        .map(|id| {
            let fields = id
                .map
                .iter()
                .map(|(k, v)| (k.clone(), redis::from_redis_value::<Vec<u8>>(v).unwrap()))
                .collect();
            (id.id, fields)
        })
        .collect()
}

fn decode<M: prost::Message + Default>(fields: &HashMap<String, Vec<u8>>) -> M {
    M::decode(fields["d"].as_slice()).unwrap()
}

fn len(conn: &mut redis::Connection, stream: &str) -> u64 {
    redis::cmd("XLEN").arg(stream).query(conn).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn killing_an_inference_replica_loses_no_group_and_the_survivor_takes_its_jobs() {
    let cluster = Cluster::new();
    let _reward = cluster.reward();
    let learner = cluster.learner();
    let mut doomed = cluster.inference("inference-a");
    let _survivor = cluster.inference("inference-b");
    let mut conn = cluster.redis();
    let prompts = format!("r1:{RUN}:prompts");

    // Kill replica a (SIGKILL) while it holds jobs, after the first update.
    wait_for_step(&learner, 1).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut poll = tokio::time::interval(Duration::from_millis(20));
    let orphaned: Vec<String> = loop {
        let pending: redis::streams::StreamPendingCountReply = redis::cmd("XPENDING")
            .arg(&prompts)
            .arg("inference")
            .arg("-")
            .arg("+")
            .arg(100)
            .arg("inference-a")
            .query(&mut conn)
            .unwrap();
        if !pending.ids.is_empty() {
            doomed.kill();
            break pending.ids.into_iter().map(|p| p.id).collect();
        }
        assert!(Instant::now() < deadline, "replica a never held a job");
        poll.tick().await;
    };

    let done = finished(&learner);
    let counters = &done["counters"];
    assert_eq!(done["step"], 6);
    assert_eq!(counters["accepted"], 24, "{done}");
    assert_eq!(counters["duplicates"], 0, "{done}");
    assert_eq!(counters["invalid"], 0, "{done}");
    // The queue agrees with the learner: one scored group per sampled group,
    // each either trained on or rejected as stale; nothing dead-lettered.
    let rollouts = len(&mut conn, &format!("r1:{RUN}:rollouts"));
    let scored = len(&mut conn, &format!("r1:{RUN}:scored"));
    assert_eq!(rollouts, scored);
    let accounted = counters["accepted"].as_u64().unwrap() + counters["stale"].as_u64().unwrap();
    assert!(
        scored >= accounted,
        "scored {scored} < accounted {accounted}"
    );
    assert_eq!(len(&mut conn, &format!("r1:{RUN}:dead")), 0);
    // Every orphaned job was sampled by the survivor.
    let job_ids: HashMap<String, String> = entries(&mut conn, &prompts)
        .into_iter()
        .map(|(id, fields)| (id, decode::<pb::PromptJob>(&fields).id))
        .collect();
    let samplers: HashMap<String, String> = entries(&mut conn, &format!("r1:{RUN}:rollouts"))
        .into_iter()
        .map(|(_, fields)| {
            let group = decode::<pb::Group>(&fields);
            (group.job.unwrap().id, group.sampler_id)
        })
        .collect();
    for entry in &orphaned {
        let job = &job_ids[entry];
        assert_eq!(
            samplers.get(job).map(String::as_str),
            Some("inference-b"),
            "orphaned job {job}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_learner_resumes_from_its_checkpoint_at_the_right_version() {
    let cluster = Cluster::new();
    let _reward = cluster.reward();
    // The learner first: a replica reports ready once it serves a policy.
    let mut learner = cluster.learner();
    let _inference = cluster.inference("inference-a");
    // Checkpoints come every 2 steps; kill the learner after step 3.
    wait_for_step(&learner, 3).await;
    learner.kill();
    let checkpoint =
        std::fs::read_to_string(cluster.dir.path().join("learner/checkpoints/latest")).unwrap();
    let resumed_from: u64 = checkpoint
        .trim()
        .rsplit('-')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(resumed_from >= 2);

    let learner = cluster.learner();
    assert!(
        learner_step(&learner).await >= resumed_from,
        "the learner restarted from scratch"
    );
    let done = finished(&learner);
    assert_eq!(done["step"], 6);
    // Groups trained on after the checkpoint were never acknowledged: they
    // count once, in the resumed run.
    assert_eq!(done["counters"]["accepted"], 24, "{done}");
    assert_eq!(done["counters"]["duplicates"], 0, "{done}");
    let mut conn = cluster.redis();
    let number: u64 = redis::cmd("HGET")
        .arg(format!("r1:{RUN}:policy"))
        .arg("number")
        .query(&mut conn)
        .unwrap();
    assert_eq!(number, 7, "one version per step after the starting one");
    for v in 1..=7 {
        assert!(
            cluster
                .dir
                .path()
                .join(format!("learner/weights/v{v}/model.safetensors"))
                .is_file()
        );
    }
}
