//! How tabssl's own plan node crosses the network to a worker.
//!
//! DataFusion's plan serialisation sends scalar and aggregate functions by name, and the
//! worker resolves the name in its own registry: that covers every tabssl function. The
//! model an `embed` or `predict` call runs is pinned to its content hash while the query is
//! planned (`'adult_vime@sha256:…'`, see [`tabssl_infer::udf`]), so the pin travels as an
//! ordinary literal and a worker whose files differ refuses to run them.
//!
//! What DataFusion cannot send is the `tabssl_synthetic` scan ([`SyntheticExec`]); it
//! travels as its [`ScanSpec`] and a worker generates the same rows.

use std::sync::Arc;

use datafusion::common::not_impl_err;
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use serde::{Deserialize, Serialize};

use tabssl_functions::synthetic::{ScanSpec, SyntheticExec};

/// tabssl's own plan nodes, as they travel.
#[derive(Debug, Serialize, Deserialize)]
enum TabsslNode {
    /// A `tabssl_synthetic` scan.
    Synthetic(ScanSpec),
}

/// The physical-plan codec of a tabssl cluster; the coordinator and every worker register it.
#[derive(Debug, Clone, Copy, Default)]
pub struct TabsslCodec;

impl PhysicalExtensionCodec for TabsslCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        _inputs: &[Arc<dyn ExecutionPlan>],
        _ctx: &TaskContext,
        _proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let node: TabsslNode =
            serde_json::from_slice(buf).map_err(|e| tabssl_functions::Error::json("a tabssl plan node", e))?;
        match node {
            TabsslNode::Synthetic(spec) => Ok(Arc::new(SyntheticExec::try_new(spec)?)),
        }
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        _proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        let Some(scan) = node.downcast_ref::<SyntheticExec>() else {
            return not_impl_err!(
                "{} cannot run on a worker: it is not a plan node DataFusion or tabssl can send over the network",
                node.name()
            );
        };
        serde_json::to_writer(buf, &TabsslNode::Synthetic(scan.spec().clone()))
            .map_err(|e| tabssl_functions::Error::json("a synthetic scan", e))?;
        Ok(())
    }
}
