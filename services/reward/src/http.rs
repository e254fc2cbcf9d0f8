//! The HTTP/JSON API: `POST /v1/score`, `POST /v1/check_math`,
//! `POST /v1/run_tests`, and SandboxFusion's `POST /run_code`.

use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use r1_proto::domain::{CodeTask, Task};
use r1_proto::pb;
use serde::{Deserialize, Serialize};

use crate::api::RewardApi;
use crate::code::cases;
use crate::code::sandbox_fusion::{RunCodeRequest, RunCodeResponse};
use crate::error::ApiError;
use crate::metrics::{Api, Rejection};
use crate::scoring::ScoreError;

pub fn router(api: RewardApi) -> Router {
    Router::new()
        .route("/v1/score", post(score))
        .route("/v1/check_math", post(check_math))
        .route("/v1/run_tests", post(run_tests))
        .route("/run_code", post(run_code))
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
    pub code: Option<CodeTaskJson>,
    #[serde(default)]
    pub language: String,
    #[serde(default)]
    pub reward_profile: String,
}

/// A code task as JSON; `tests` in the APPS/TACO or LiveCodeBench shape.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeTaskJson {
    pub language: String,
    pub tests: serde_json::Value,
    #[serde(default)]
    pub fn_name: Option<String>,
    /// `exact` (default), `lines` or `numeric`.
    #[serde(default)]
    pub comparison: Option<String>,
    #[serde(default)]
    pub all_or_nothing: bool,
    /// 0 = the service default.
    #[serde(default)]
    pub max_tests: u32,
    #[serde(default)]
    pub time_limit_ms: u64,
    #[serde(default)]
    pub memory_limit_bytes: u64,
}

impl CodeTaskJson {
    fn into_wire(self) -> Result<pb::CodeTask, ApiError> {
        let suite = cases::parse(&self.tests, self.fn_name.as_deref())
            .map_err(ApiError::InvalidArgument)?;
        let comparison = match self.comparison.as_deref() {
            None | Some("exact") => pb::OutputComparison::Exact,
            Some("lines") => pb::OutputComparison::Lines,
            Some("numeric") => pb::OutputComparison::Numeric,
            Some(other) => {
                return Err(ApiError::InvalidArgument(format!(
                    "comparison: {other:?} is not one of exact, lines, numeric"
                )));
            }
        };
        Ok(pb::CodeTask {
            language: self.language,
            tests: suite
                .tests
                .into_iter()
                .map(|t| pb::CodeTest {
                    input: t.input,
                    expected_output: t.expected_output,
                })
                .collect(),
            fn_name: suite.fn_name.unwrap_or_default(),
            limits: Some(pb::CodeLimits {
                time_limit_ms: self.time_limit_ms,
                memory_limit_bytes: self.memory_limit_bytes,
                max_tests: self.max_tests,
            }),
            comparison: comparison as i32,
            all_or_nothing: self.all_or_nothing,
        })
    }
}

/// A program (or a completion holding one) and the tests to run it on.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunTestsRequest {
    #[serde(default)]
    pub program: Option<String>,
    #[serde(default)]
    pub completion: Option<String>,
    #[serde(flatten)]
    pub task: CodeTaskJson,
}

#[derive(Debug, Serialize)]
pub struct TestResultJson {
    pub passed: bool,
    pub status: &'static str,
    pub exit_code: Option<i32>,
    pub wall_time_ms: f64,
    pub stdout: String,
    pub stderr: String,
    pub message: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct RunTestsResponse {
    pub reward: f64,
    pub passed: usize,
    pub considered: usize,
    pub summary: String,
    /// False when the completion held no program (nothing was run).
    pub program_found: bool,
    pub results: Vec<TestResultJson>,
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
            ApiError::Score(ScoreError::NoSandbox) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Score(ScoreError::Sandbox(_)) => StatusCode::INTERNAL_SERVER_ERROR,
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
    let kind = match (task.math, task.code) {
        (Some(m), None) => Some(pb::task::Kind::Math(pb::MathTask {
            gold_answer: m.gold_answer,
        })),
        (None, Some(code)) => Some(pb::task::Kind::Code(code.into_wire()?)),
        (None, None) => None,
        (Some(_), Some(_)) => {
            return Err(ApiError::InvalidArgument(
                "task: give either `math` or `code`, not both".into(),
            )
            .into());
        }
    };
    let wire = pb::Task {
        kind,
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

async fn run_tests(
    State(api): State<RewardApi>,
    payload: Result<Json<RunTestsRequest>, JsonRejection>,
) -> Result<Json<RunTestsResponse>, HttpError> {
    let RunTestsRequest {
        program,
        completion,
        task,
    } = body(&api, payload)?;
    let task = CodeTask::try_from(task.into_wire()?).map_err(ApiError::Contract)?;
    let language = crate::code::language(task.language);
    let program = match (program, completion) {
        (Some(program), None) => program,
        (None, Some(completion)) => match crate::code::extract::program(&completion, language) {
            Some(program) => program.to_owned(),
            None => {
                return Ok(Json(RunTestsResponse {
                    reward: 0.0,
                    passed: 0,
                    considered: task.tests.len(),
                    summary: format!("no {language} program in the completion"),
                    program_found: false,
                    results: Vec::new(),
                }));
            }
        },
        _ => {
            return Err(ApiError::InvalidArgument(
                "give exactly one of `program` and `completion`".into(),
            )
            .into());
        }
    };
    let report = api.run_tests(Api::Http, program, task).await?;
    Ok(Json(RunTestsResponse {
        reward: report.reward,
        passed: report.passed,
        considered: report.considered,
        summary: report.summary(),
        program_found: true,
        results: report
            .results
            .into_iter()
            .map(|r| TestResultJson {
                passed: r.passed,
                status: r.outcome.status.name(),
                exit_code: r.outcome.exit_code,
                wall_time_ms: r.outcome.wall_time.as_secs_f64() * 1e3,
                stdout: r.outcome.stdout_text(),
                stderr: r.outcome.stderr_text(),
                message: r.outcome.message,
            })
            .collect(),
    }))
}

/// SandboxFusion's endpoint: bad requests are HTTP errors, failures of the
/// host a `SandboxError` status, everything the program does a result.
async fn run_code(
    State(api): State<RewardApi>,
    payload: Result<Json<RunCodeRequest>, JsonRejection>,
) -> Result<Json<RunCodeResponse>, HttpError> {
    let request = body(&api, payload)?;
    let program = request
        .program(api.scorer().config().code.limits())
        .map_err(ApiError::InvalidArgument)?;
    match api.run_code(Api::Http, program).await {
        Ok(outcome) => Ok(Json(RunCodeResponse::from_outcome(&outcome))),
        Err(ApiError::Score(ScoreError::Sandbox(message)) | ApiError::Internal(message)) => {
            Ok(Json(RunCodeResponse::sandbox_error(message)))
        }
        Err(e) => Err(e.into()),
    }
}
