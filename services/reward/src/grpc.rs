//! The gRPC `Reward` service: validates, converts, calls [`RewardApi`].

use r1_proto::domain::{Group, Task};
use r1_proto::pb;
use r1_proto::pb::reward_server::Reward;
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
        _request: Request<pb::RunCodeRequest>,
    ) -> Result<Response<pb::RunCodeResponse>, Status> {
        Err(ApiError::Unimplemented(
            "RunCode needs the code sandbox, which this build of the reward service does not include".into(),
        )
        .into())
    }
}
