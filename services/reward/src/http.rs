//! The HTTP/JSON API: `POST /v1/score` and `POST /v1/check_math`.

use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use r1_proto::domain::Task;
use r1_proto::pb;
use serde::{Deserialize, Serialize};

use crate::api::RewardApi;
use crate::error::ApiError;
use crate::metrics::{Api, Rejection};
use crate::scoring::ScoreError;

pub fn router(api: RewardApi) -> Router {
    Router::new()
        .route("/v1/score", post(score))
        .route("/v1/check_math", post(check_math))
        .with_state(api)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MathTaskJson {
    pub gold_answer: String,
}

/// A task as JSON: `{"math": {"gold_answer": "12"}, "language": "en"}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskJson {
    pub math: Option<MathTaskJson>,
    #[serde(default)]
    pub language: String,
    #[serde(default)]
    pub reward_profile: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreRequest {
    pub task: TaskJson,
    pub completion: String,
}

#[derive(Debug, Serialize)]
pub struct ComponentJson {
    pub name: String,
    pub value: f64,
    pub weight: f64,
}

#[derive(Debug, Serialize)]
pub struct ScoreJson {
    pub total: f64,
    pub components: Vec<ComponentJson>,
    pub detail: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckMathRequest {
    pub gold: String,
    pub pred: String,
}

#[derive(Debug, Serialize)]
pub struct CheckMathResponse {
    pub correct: bool,
    pub decided: bool,
    pub pred_extracted: Option<String>,
    pub gold_extracted: Option<String>,
}

struct HttpError(ApiError);

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let status = match &self.0 {
            ApiError::Contract(_) | ApiError::InvalidArgument(_) => StatusCode::BAD_REQUEST,
            ApiError::Score(ScoreError::UnknownProfile(_) | ScoreError::UnknownLanguage(_)) => {
                StatusCode::BAD_REQUEST
            }
            ApiError::Score(ScoreError::Unsupported(_)) | ApiError::Unimplemented(_) => {
                StatusCode::NOT_IMPLEMENTED
            }
            ApiError::Overloaded(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        (
            status,
            Json(serde_json::json!({ "error": self.0.to_string() })),
        )
            .into_response()
    }
}

impl From<ApiError> for HttpError {
    fn from(e: ApiError) -> Self {
        Self(e)
    }
}

fn body<T>(api: &RewardApi, payload: Result<Json<T>, JsonRejection>) -> Result<T, HttpError> {
    payload.map(|Json(v)| v).map_err(|rejection| {
        api.scorer()
            .metrics()
            .reject(Api::Http, Rejection::InvalidArgument);
        HttpError(ApiError::InvalidArgument(rejection.body_text()))
    })
}

async fn score(
    State(api): State<RewardApi>,
    payload: Result<Json<ScoreRequest>, JsonRejection>,
) -> Result<Json<serde_json::Value>, HttpError> {
    let ScoreRequest { task, completion } = body(&api, payload)?;
    let wire = pb::Task {
        kind: task.math.map(|m| {
            pb::task::Kind::Math(pb::MathTask {
                gold_answer: m.gold_answer,
            })
        }),
        language: task.language,
        reward_profile: task.reward_profile,
    };
    let task = Task::try_from(wire).map_err(|e| ApiError::Contract(e.within("task")))?;
    let score = api.score(Api::Http, task, completion).await?;
    let json = ScoreJson {
        total: score.total,
        components: score
            .components
            .into_iter()
            .map(|c| ComponentJson {
                name: c.name,
                value: c.value,
                weight: c.weight,
            })
            .collect(),
        detail: score.detail,
    };
    Ok(Json(serde_json::json!({ "score": json })))
}

async fn check_math(
    State(api): State<RewardApi>,
    payload: Result<Json<CheckMathRequest>, JsonRejection>,
) -> Result<Json<CheckMathResponse>, HttpError> {
    let CheckMathRequest { gold, pred } = body(&api, payload)?;
    let v = api.check_math(Api::Http, gold, pred).await?;
    Ok(Json(CheckMathResponse {
        correct: v.correct,
        decided: v.decided,
        pred_extracted: v.pred_extracted,
        gold_extracted: v.gold_extracted,
    }))
}
