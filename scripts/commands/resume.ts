// `fleet resume <id>`: end a suspension; the next pass converges the project on the tracked branch.
import { projectRequest } from '../daemon-client.ts';

export default projectRequest('resume', 'Resume a suspended project: the next pass converges it on the tracked branch.');
