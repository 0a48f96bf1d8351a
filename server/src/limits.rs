//! Per-query resource limits on the general query path: a memory pool of its own for each
//! query (sorts, joins, aggregations and the buffered result count against it; exceeding it
//! is DataFusion's ResourcesExhausted, 53200) and a cap on result rows (54000).

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::dataframe::DataFrame;
use datafusion::execution::memory_pool::{GreedyMemoryPool, MemoryConsumer};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::physical_plan::execute_stream;
use futures::StreamExt;

use crate::engine::Engine;
use crate::error::{NowError, NowResult};

/// Runs `df` to completion under the configured limits and returns its batches.
pub async fn collect(engine: &Engine, df: DataFrame) -> NowResult<Vec<RecordBatch>> {
    let limits = &engine.config().limits;
    let mut task = df.task_ctx();
    if limits.query_memory_bytes > 0 {
        let pool = Arc::new(GreedyMemoryPool::new(limits.query_memory_bytes));
        let runtime = RuntimeEnvBuilder::from_runtime_env(task.runtime_env().as_ref()).with_memory_pool(pool).build_arc()?;
        task = task.with_runtime(runtime);
    }
    let pool = task.memory_pool().clone();
    let plan = df.create_physical_plan().await?;
    let mut stream = execute_stream(plan, Arc::new(task))?;
    let result = MemoryConsumer::new("query result").register(&pool);
    let mut out = Vec::new();
    let mut rows = 0u64;
    while let Some(batch) = stream.next().await.transpose()? {
        rows += batch.num_rows() as u64;
        if limits.max_result_rows > 0 && rows > limits.max_result_rows {
            return Err(NowError::coded(
                "54000",
                format!("the result has more than {} rows (max_result_rows); add a LIMIT or use COPY ... TO", limits.max_result_rows),
            ));
        }
        result.try_grow(batch.get_array_memory_size())?;
        out.push(batch);
    }
    Ok(out)
}
