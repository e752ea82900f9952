//! The admin API's metering report.

use strata_proto::admin;
use tonic::{Request, Status};

use super::Admin;
use super::accounts::auth_status;

impl Admin {
    /// Sums of the metering records of the hours asked for; this node's counts are written
    /// first, so they are in.
    pub(super) async fn usage(
        &self,
        request: Request<admin::MeteringRequest>,
    ) -> Result<Vec<admin::MeteringRecord>, Status> {
        let principal = self.principal(&request).await?;
        let req = request.into_inner();
        if req.all_tenants {
            principal.authorize_root().map_err(auth_status)?;
        } else {
            principal.authorize_admin(&req.namespace).map_err(auth_status)?;
        }
        if req.from_ms > req.to_ms {
            return Err(Status::invalid_argument("--from is after --to"));
        }
        self.metering
            .flush()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let tenant = (!req.all_tenants).then_some(req.namespace.as_str());
        let rows = strata_tenancy::metering::read(self.metering.store.as_ref(), tenant, req.from_ms, req.to_ms)
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        Ok(rows
            .into_iter()
            .map(|r| admin::MeteringRecord {
                namespace: r.tenant,
                hour_ms: r.hour_ms,
                metric: r.metric,
                value: r.value,
            })
            .collect())
    }
}
