// The part of splunk-logging's API the bench's peer forwarder uses (the package has no types).
declare module 'splunk-logging' {
  export interface SplunkLoggerConfig {
    token: string;
    url: string;
    maxBatchCount?: number;
    maxBatchSize?: number;
    batchInterval?: number;
    maxRetries?: number;
  }
  export interface SplunkPayload {
    message: unknown;
    severity?: string;
    metadata?: { time?: number; host?: string; source?: string; sourcetype?: string; index?: string };
  }
  export type SendCallback = (error: Error | null, response: unknown, body: unknown) => void;
  export class Logger {
    constructor(config: SplunkLoggerConfig);
    error: (error: Error, context: unknown) => void;
    /** Serialized events waiting for the next flush. */
    serializedContextQueue: string[];
    send(payload: SplunkPayload, callback?: SendCallback): void;
    flush(callback?: SendCallback): void;
  }
}
