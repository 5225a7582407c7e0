/**
 * A local fake of the ECS task metadata endpoint v4 (the agent-side URL in
 * ECS_CONTAINER_METADATA_URI_V4): `GET {base}/task` serves the task JSON, `GET {base}` the
 * calling container's JSON. Payload: AWS's documented EC2-launch-type example (task-ec2.json).
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export function exampleTask(): Record<string, any> { // eslint-disable-line @typescript-eslint/no-explicit-any
  return JSON.parse(readFileSync(new URL('./task-ec2.json', import.meta.url), 'utf8')) as Record<string, unknown>;
}

export class FakeEcsMetadata {
  readonly #server: Server;
  /** The v4 base path, like `/v4/<container-id>` in real ECS_CONTAINER_METADATA_URI_V4 values. */
  readonly basePath = '/v4/ee08638adaaf009d78c248913f629e38299471d45fe7dc944d1039077e3424ca';
  task: Record<string, unknown>;
  /** Raw body override (for malformed-response tests). */
  rawTaskBody: string | undefined;

  private constructor(task: Record<string, unknown>) {
    this.task = task;
    this.#server = createServer((req, res) => {
      const json = (code: number, body: string): void => {
        res.writeHead(code, { 'content-type': 'application/json' });
        res.end(body);
      };
      if (req.method !== 'GET') return json(405, '');
      if (req.url === `${this.basePath}/task`) return json(200, this.rawTaskBody ?? JSON.stringify(this.task, null, 4));
      if (req.url === this.basePath) {
        const containers = (this.task.Containers as { DockerId: string }[]) ?? [];
        return json(200, JSON.stringify(containers.find((c) => this.basePath.endsWith(c.DockerId)) ?? {}, null, 4));
      }
      return json(404, '');
    });
  }

  static async start(task: Record<string, unknown> = exampleTask()): Promise<FakeEcsMetadata> {
    const fake = new FakeEcsMetadata(task);
    await new Promise<void>((resolve) => fake.#server.listen(0, '127.0.0.1', resolve));
    return fake;
  }

  /** The value ECS would put in ECS_CONTAINER_METADATA_URI_V4. */
  get uri(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}${this.basePath}`;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
