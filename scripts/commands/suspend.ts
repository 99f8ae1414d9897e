// `fleet suspend <id>`: the daemon leaves one project exactly as it is (Flux's suspend) until `fleet resume`.
import { projectRequest } from '../daemon-client.ts';

export default projectRequest('suspend', 'Suspend one project: every pass leaves it exactly as it is (no deploys, restarts or stops) until resumed.');
