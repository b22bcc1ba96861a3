import { HttpClient } from '@actions/http-client';

export interface OutgoingRequest {
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
  readonly timeoutMs: number;
}

export interface IncomingReply {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: string;
}

/** Sends one POST; rejects only when no HTTP answer arrived (network error, timeout). */
export type Transport = (request: OutgoingRequest) => Promise<IncomingReply>;

/**
 * @actions/http-client honours the runner's HTTPS_PROXY / NO_PROXY, which self-hosted
 * runners behind a proxy need. Its own retries are off (the caller owns the policy), and
 * so are redirects: a redirected POST would carry the ID token to wherever it points.
 */
export const sendWithHttpClient: Transport = async (request) => {
  const client = new HttpClient('sentryagent-actions', [], {
    allowRetries: false,
    allowRedirects: false,
    socketTimeout: request.timeoutMs,
  });
  try {
    const response = await client.request('POST', request.url, request.body, { ...request.headers });
    const body = await response.readBody();
    return { status: response.message.statusCode ?? 0, headers: response.message.headers, body };
  } finally {
    client.dispose();
  }
};
