// A sweep's worker process: runs the jobs its parent sends it, one at a time (see
// local-pool.ts). A job that crashes it or runs it out of memory fails alone; it ends when its
// parent goes.
import { runJob, type JobMessage } from './run-job.js';

process.on('message', (msg: JobMessage) => {
  void runJob(msg).then((result) => process.send!(result));
});
process.on('disconnect', () => process.exit(0));
