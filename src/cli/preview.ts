/**
 * `--preview DIR`: exactly what is (or, with --dry-run, would be) sent, one file per request: HEC batches
 * (.json), Teams cards (.json, pasteable into the Adaptive Cards designer), emails (.eml), webhook bodies.
 * Secrets are redacted by the sinks' renderers.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { RecordResult } from '../pipeline/run.js';
import type { DeliveryItem, Sink } from '../sinks/sink.js';

export class PreviewCollector {
  private readonly items = new Map<string, DeliveryItem[]>();

  /** Remembers the records each destination gets (delivered or, in a dry run, would get). */
  add(result: RecordResult): void {
    if (!result.finding) return;
    for (const name of [...result.report.destinations, ...result.report.deadLettered]) {
      let list = this.items.get(name);
      if (!list) this.items.set(name, (list = []));
      list.push({ input: result.report.input, finding: result.finding, ...(result.metadata ? { metadata: result.metadata } : {}) });
    }
  }

  /** Renders and writes every destination's requests under `folder`; answers the number of files. */
  async write(folder: string, sinks: ReadonlyMap<string, Sink>): Promise<number> {
    const root = path.resolve(folder);
    let written = 0;
    for (const [name, items] of this.items) {
      const sink = sinks.get(name);
      if (!sink) continue;
      for (const file of sink.render(items)) {
        const target = path.resolve(root, file.name);
        // Names come from record ids: never let one leave the folder.
        if (!target.startsWith(root + path.sep)) throw new Error(`preview file name "${file.name}" leaves ${root}`);
        await mkdir(path.dirname(target), { recursive: true });
        await writeFile(target, file.content);
        written += 1;
      }
    }
    return written;
  }
}
