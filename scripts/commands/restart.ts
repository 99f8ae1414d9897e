// `fleet restart <id>`: a new instance for one project (the old one serves until the new one is ready).
import { projectRequest } from '../daemon-client.ts';

export default projectRequest('restart', 'Restart one project: the daemon starts a new instance and retires the old one once the new one is ready.');
