import { HttpClient, getProxyUrl } from '@actions/http-client';
import type { RequestHandler } from '@actions/http-client/lib/interfaces';

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
  const client = new HttpClient('sentryagent-actions', [unbracketIpv6Host(request.url)], {
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

/**
 * @actions/http-client gives Node the URL's hostname as `host`, brackets and all, and Node
 * looks "[::1]" up as a name (ENOTFOUND). A direct connection needs the bare address; a
 * proxied one keeps the brackets, which its CONNECT line needs.
 */
function unbracketIpv6Host(url: string): RequestHandler {
  return {
    prepareRequest: (options) => {
      if (typeof options.host === 'string' && /^\[[0-9a-f:.]+\]$/i.test(options.host) && getProxyUrl(url) === '') {
        options.host = options.host.slice(1, -1);
      }
    },
    canHandleAuthentication: () => false,
    handleAuthentication: () => Promise.reject(new Error('sentryagent-actions answers no authentication challenge')),
  };
}
