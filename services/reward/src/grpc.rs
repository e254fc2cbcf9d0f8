//! The gRPC `Reward` service: validates, converts, calls [`RewardApi`].

use std::time::Duration;

use r1_proto::domain::{Group, Task};
use r1_proto::pb;
use r1_proto::pb::reward_server::Reward;
use r1_sandbox::{Language, Program, RunStatus};
use tonic::{Request, Response, Status};

use crate::api::RewardApi;
use crate::error::ApiError;
use crate::metrics::Api;

#[derive(Debug, Clone)]
pub struct GrpcReward {
    api: RewardApi,
    scorer_id: String,
}

impl GrpcReward {
    pub fn new(api: RewardApi, scorer_id: String) -> Self {
        Self { api, scorer_id }
    }
}

fn required<T>(value: Option<T>, field: &str) -> Result<T, ApiError> {
    value.ok_or_else(|| ApiError::InvalidArgument(format!("field `{field}` is required")))
}

#[tonic::async_trait]
impl Reward for GrpcReward {
    async fn score(
        &self,
        request: Request<pb::ScoreRequest>,
    ) -> Result<Response<pb::ScoreResponse>, Status> {
        let pb::ScoreRequest { task, completion } = request.into_inner();
        let task = Task::try_from(required(task, "task")?)
            .map_err(|e| ApiError::Contract(e.within("task")))?;
        let score = self.api.score(Api::Grpc, task, completion).await?;
        Ok(Response::new(pb::ScoreResponse {
            score: Some(score.into()),
        }))
    }

    async fn score_group(
        &self,
        request: Request<pb::ScoreGroupRequest>,
    ) -> Result<Response<pb::ScoredGroup>, Status> {
        let pb::ScoreGroupRequest { group } = request.into_inner();
        let group = Group::try_from(required(group, "group")?)
            .map_err(|e| ApiError::Contract(e.within("group")))?;
        let (group, scores) = self.api.score_group(Api::Grpc, group).await?;
        Ok(Response::new(pb::ScoredGroup {
            group: Some(group.into()),
            scores: scores.into_iter().map(Into::into).collect(),
            scorer_id: self.scorer_id.clone(),
        }))
    }

    async fn check_math(
        &self,
        request: Request<pb::CheckMathRequest>,
    ) -> Result<Response<pb::CheckMathResponse>, Status> {
        let pb::CheckMathRequest { gold, pred } = request.into_inner();
        let verdict = self.api.check_math(Api::Grpc, gold, pred).await?;
        Ok(Response::new(pb::CheckMathResponse {
            correct: verdict.correct,
            pred_extracted: verdict.pred_extracted.unwrap_or_default(),
            gold_extracted: verdict.gold_extracted.unwrap_or_default(),
            decided: verdict.decided,
        }))
    }

    async fn run_code(
        &self,
        request: Request<pb::RunCodeRequest>,
    ) -> Result<Response<pb::RunCodeResponse>, Status> {
        let pb::RunCodeRequest {
            language,
            code,
            stdin,
            time_limit_ms,
            memory_limit_bytes,
            fuel,
        } = request.into_inner();
        let language = Language::parse(&language).ok_or_else(|| {
            ApiError::InvalidArgument(format!(
                "language: {language:?} is not supported (supported: python, javascript)"
            ))
        })?;
        let mut limits = self.api.scorer().config().code.limits();
        if time_limit_ms > 0 {
            limits.wall_time = Duration::from_millis(time_limit_ms);
        }
        if memory_limit_bytes > 0 {
            limits.memory_bytes = memory_limit_bytes;
        }
        limits.fuel = (fuel > 0).then_some(fuel);
        limits
            .validate()
            .map_err(|e| ApiError::InvalidArgument(format!("limits: {e}")))?;
        let outcome = self
            .api
            .run_code(
                Api::Grpc,
                Program {
                    language,
                    source: code,
                    stdin: stdin.into_bytes(),
                    limits,
                },
            )
            .await?;
        let status = match outcome.status {
            RunStatus::Finished => pb::RunStatus::Finished,
            RunStatus::TimeLimitExceeded => pb::RunStatus::TimeLimitExceeded,
            RunStatus::MemoryLimitExceeded => pb::RunStatus::MemoryLimitExceeded,
            RunStatus::OutputLimitExceeded => pb::RunStatus::OutputLimitExceeded,
            RunStatus::RuntimeError => pb::RunStatus::RuntimeError,
        };
        Ok(Response::new(pb::RunCodeResponse {
            status: status as i32,
            exit_code: outcome.exit_code.unwrap_or(-1),
            stdout: outcome.stdout_text(),
            stderr: outcome.stderr_text(),
            wall_time_ms: outcome.wall_time.as_secs_f64() * 1e3,
            fuel_used: outcome.fuel_used,
            peak_memory_bytes: outcome.peak_memory_bytes,
            message: outcome.message.unwrap_or_default(),
        }))
    }
}
