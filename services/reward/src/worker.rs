//! The queue worker: scores the groups of the rollouts stream and hands the
//! scored groups to the learner, at least once.

use std::time::Duration;

use r1_proto::domain::Group;
use r1_proto::pb;
use r1_proto::queue::{Consumer, ConsumerConfig, Queue, ROLLOUTS, Received, SCORED};
use r1_runtime::Shutdown;
use tokio::task::JoinSet;

use std::sync::Arc;

use crate::metrics::{Api, ApiLabels};
use crate::scoring::Scorer;

/// Consumer group of the reward replicas on the rollouts stream.
pub const GROUP: &str = "reward";

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub replica_id: String,
    /// Groups scored at once.
    pub concurrency: usize,
    pub reclaim_idle: Duration,
    pub max_deliveries: u64,
}

/// Runs until shutdown starts; groups already taken are finished and handed
/// off before it returns.
pub async fn run(
    queue: Queue,
    scorer: Arc<Scorer>,
    config: WorkerConfig,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let consumer_config = ConsumerConfig {
        batch: config.concurrency.max(1),
        block: Duration::from_millis(500),
        reclaim_idle: config.reclaim_idle,
        max_deliveries: config.max_deliveries,
    };
    let mut consumer = queue
        .consumer(&ROLLOUTS, GROUP, &config.replica_id, consumer_config)
        .await?;
    tracing::info!(replica = %config.replica_id, stream = consumer.stream(), "scoring rollouts");
    while !shutdown.is_started() {
        let batch = tokio::select! {
            () = shutdown.started() => break,
            batch = consumer.next() => batch,
        };
        let batch = match batch {
            Ok(batch) => batch,
            Err(e) => {
                tracing::error!(error = %e, "reading the rollouts stream failed");
                continue;
            }
        };
        let mut scoring = JoinSet::new();
        // At most `concurrency` groups are taken per read, so at most that
        // many are scored at once, off the async workers.
        for received in batch {
            let scorer = scorer.clone();
            scoring.spawn_blocking(move || {
                let outcome = score(&scorer, &received);
                (received, outcome)
            });
        }
        while let Some(done) = scoring.join_next().await {
            let Ok((received, outcome)) = done else {
                tracing::error!(
                    "a scoring task failed; its entry stays pending and will be redelivered"
                );
                continue;
            };
            if let Err(e) = hand_off(
                &queue,
                &consumer,
                &scorer,
                &config.replica_id,
                received,
                outcome,
            )
            .await
            {
                tracing::error!(error = %e, "handing off a scored group failed; it will be redelivered");
            }
        }
    }
    tracing::info!("reward worker stopped");
    Ok(())
}

type Outcome = Result<(Group, Vec<r1_proto::domain::Score>), String>;

fn score(scorer: &Scorer, received: &Received<pb::Group>) -> Outcome {
    let group =
        Group::try_from(received.message.clone()).map_err(|e| format!("invalid group: {e}"))?;
    let scores = scorer
        .score_group(&group)
        .map_err(|e| format!("cannot score group: {e}"))?;
    scorer
        .metrics()
        .completions_scored
        .get_or_create(&ApiLabels { api: Api::Queue })
        .inc_by(scores.len() as u64);
    Ok((group, scores))
}

async fn hand_off(
    queue: &Queue,
    consumer: &Consumer<pb::Group>,
    scorer: &Scorer,
    scorer_id: &str,
    received: Received<pb::Group>,
    outcome: Outcome,
) -> r1_proto::queue::Result<()> {
    match outcome {
        Ok((group, scores)) => {
            let scored = pb::ScoredGroup {
                group: Some(group.into()),
                scores: scores.into_iter().map(Into::into).collect(),
                scorer_id: scorer_id.to_owned(),
            };
            consumer
                .complete(
                    std::slice::from_ref(&received.id),
                    &[queue.outgoing(&SCORED, &scored)],
                )
                .await?;
            scorer.metrics().groups_scored.inc();
            Ok(())
        }
        Err(reason) => consumer.reject(&received, reason).await,
    }
}
