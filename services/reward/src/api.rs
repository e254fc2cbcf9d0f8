//! What the gRPC and HTTP front ends share: admission control and running
//! checks off the async workers.

use std::sync::Arc;

use r1_proto::domain::{CodeTask, Group, Score, Task};
use r1_sandbox::{Program, RunOutcome};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::code::TestReport;
use crate::error::ApiError;
use crate::math::MathVerdict;
use crate::metrics::{Api, ApiLabels, Rejection};
use crate::scoring::Scorer;

/// The reward operations behind every front end.
#[derive(Debug, Clone)]
pub struct RewardApi {
    scorer: Arc<Scorer>,
    /// Requests in flight; a request that finds none free is refused at once.
    slots: Arc<Semaphore>,
    capacity: usize,
}

impl RewardApi {
    pub fn new(scorer: Arc<Scorer>, max_in_flight: usize) -> Self {
        Self {
            scorer,
            slots: Arc::new(Semaphore::new(max_in_flight)),
            capacity: max_in_flight,
        }
    }

    pub fn scorer(&self) -> &Arc<Scorer> {
        &self.scorer
    }

    fn admit(&self, api: Api) -> Result<OwnedSemaphorePermit, ApiError> {
        self.slots.clone().try_acquire_owned().map_err(|_| {
            self.scorer.metrics().reject(api, Rejection::Overloaded);
            ApiError::Overloaded(self.capacity)
        })
    }

    /// Runs CPU work on the blocking pool while holding a slot.
    async fn blocking<T: Send + 'static>(
        &self,
        api: Api,
        work: impl FnOnce(&Scorer) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let permit = self.admit(api)?;
        let scorer = self.scorer.clone();
        let result = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work(&scorer)
        })
        .await
        .map_err(|e| ApiError::Internal(format!("check panicked or was cancelled: {e}")))?;
        if let Err(e) = &result {
            let reason = match e {
                ApiError::Contract(_) | ApiError::InvalidArgument(_) => {
                    Some(Rejection::InvalidArgument)
                }
                ApiError::Score(
                    crate::scoring::ScoreError::Unsupported(_)
                    | crate::scoring::ScoreError::NoSandbox,
                ) => Some(Rejection::Unsupported),
                ApiError::Score(_) => Some(Rejection::InvalidArgument),
                _ => None,
            };
            if let Some(reason) = reason {
                self.scorer.metrics().reject(api, reason);
            }
        }
        result
    }

    pub async fn score(&self, api: Api, task: Task, completion: String) -> Result<Score, ApiError> {
        self.blocking(api, move |scorer| {
            let score = scorer.score(&task, &completion)?;
            scorer
                .metrics()
                .completions_scored
                .get_or_create(&ApiLabels { api })
                .inc();
            Ok(score)
        })
        .await
    }

    pub async fn score_group(
        &self,
        api: Api,
        group: Group,
    ) -> Result<(Group, Vec<Score>), ApiError> {
        self.blocking(api, move |scorer| {
            let scores = scorer.score_group(&group)?;
            scorer
                .metrics()
                .completions_scored
                .get_or_create(&ApiLabels { api })
                .inc_by(scores.len() as u64);
            Ok((group, scores))
        })
        .await
    }

    /// Runs one program in the sandbox.
    pub async fn run_code(&self, api: Api, program: Program) -> Result<RunOutcome, ApiError> {
        self.blocking(api, move |scorer| Ok(scorer.run_code(program)?))
            .await
    }

    /// Runs a program against tests.
    pub async fn run_tests(
        &self,
        api: Api,
        program: String,
        task: CodeTask,
    ) -> Result<TestReport, ApiError> {
        self.blocking(api, move |scorer| {
            let sandbox = scorer.sandbox()?;
            let report = crate::code::run_tests(sandbox, &program, &task, &scorer.config().code)
                .map_err(crate::scoring::ScoreError::from)?;
            let language = crate::code::language(task.language);
            for result in &report.results {
                scorer.metrics().sandbox_run(&result.outcome, language);
            }
            Ok(report)
        })
        .await
    }

    pub async fn check_math(
        &self,
        api: Api,
        gold: String,
        pred: String,
    ) -> Result<MathVerdict, ApiError> {
        if gold.trim().is_empty() {
            self.scorer
                .metrics()
                .reject(api, Rejection::InvalidArgument);
            return Err(ApiError::InvalidArgument("field `gold` is required".into()));
        }
        self.blocking(api, move |scorer| Ok(scorer.check_math(&gold, &pred)))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RewardConfig;
    use crate::metrics::Metrics;

    #[tokio::test]
    async fn a_request_beyond_capacity_is_refused_as_resource_exhausted() {
        let api = RewardApi::new(
            Arc::new(Scorer::new(RewardConfig::default(), Metrics::default())),
            1,
        );
        let held = api.admit(Api::Grpc).unwrap();
        let refused = api
            .check_math(Api::Grpc, "1".into(), "1".into())
            .await
            .unwrap_err();
        assert!(matches!(refused, ApiError::Overloaded(1)));
        assert_eq!(
            tonic::Status::from(refused).code(),
            tonic::Code::ResourceExhausted
        );
        drop(held);
        assert!(
            api.check_math(Api::Grpc, "1".into(), "1".into())
                .await
                .unwrap()
                .correct
        );
    }
}
