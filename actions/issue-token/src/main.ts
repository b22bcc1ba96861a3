import * as core from '@actions/core';
import { runPost } from './post.js';
import { run } from './run.js';

// The runner runs this file for `main:` and again for `post:`; state saved by the main run
// tells them apart (the actions/checkout pattern). Saved first, so that even a main run
// that fails is never repeated as the post step.
if (core.getState('isPost') === 'true') {
  await runPost();
} else {
  core.saveState('isPost', 'true');
  await run();
}
