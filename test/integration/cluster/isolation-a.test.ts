import { isolationSuite } from './isolation.js';

isolationSuite('file-a');
