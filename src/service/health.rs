//! The standard `grpc.health.v1.Health` service for "" (the whole server)
//! and "slant.v1.Scorer".
//!
//! Both names share one status: SERVING while a model is loaded and the
//! server runs, NOT_SERVING with no model or once it starts draining. Check answers from a `watch` channel (no lock);
//! an unknown name is NOT_FOUND. Watch sends the status and every change,
//! per the protocol (SERVICE_UNKNOWN for an unknown name), and ends the
//! stream after it has sent NOT_SERVING, so a watcher does not hold its
//! connection open through the drain.

use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

use super::reply::server::scorer_server::SERVICE_NAME;

/// The health service, answering from `status`.
pub(crate) fn health_service(
    status: watch::Receiver<ServingStatus>,
) -> HealthServer<HealthService> {
    HealthServer::new(HealthService { status })
}

#[derive(Debug, Clone)]
pub(crate) struct HealthService {
    status: watch::Receiver<ServingStatus>,
}

fn known(service: &str) -> bool {
    service.is_empty() || service == SERVICE_NAME
}

fn response(status: ServingStatus) -> Result<HealthCheckResponse, Status> {
    Ok(HealthCheckResponse {
        status: status as i32,
    })
}

#[tonic::async_trait]
impl Health for HealthService {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        let service = &request.get_ref().service;
        if !known(service) {
            return Err(Status::not_found(format!(
                "unknown service {service:?}: this server reports \"\" and {SERVICE_NAME:?}"
            )));
        }
        let status = *self.status.borrow();
        Ok(Response::new(HealthCheckResponse {
            status: status as i32,
        }))
    }

    type WatchStream = ReceiverStream<Result<HealthCheckResponse, Status>>;

    async fn watch(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let known = known(&request.get_ref().service);
        let mut status = self.status.clone();
        let (tx, rx) = mpsc::channel(2);
        tokio::spawn(async move {
            if !known {
                if tx
                    .send(response(ServingStatus::ServiceUnknown))
                    .await
                    .is_err()
                {
                    return;
                }
                tokio::select! {
                    _ = status.wait_for(|s| *s == ServingStatus::NotServing) => {}
                    _ = tx.closed() => {}
                }
                return;
            }
            loop {
                let now = *status.borrow_and_update();
                if tx.send(response(now)).await.is_err() || now == ServingStatus::NotServing {
                    return;
                }
                tokio::select! {
                    changed = status.changed() => if changed.is_err() { return },
                    _ = tx.closed() => return,
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}
