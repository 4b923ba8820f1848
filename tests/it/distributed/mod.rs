//! Scale-out on datafusion-distributed: in-process workers on 127.0.0.1:0 give exactly the
//! single-process results (embeddings, corruption, marginal samples, a whole VIME export);
//! a worker with another model, an unreachable worker and files outside a worker's data
//! roots are clear errors; `tabssl worker` processes serve `tabssl sql`/`export --workers`,
//! and a worker killed mid-query fails the query with its name, leaving no output file.

mod harness;
mod processes;
mod results;
