// Keeps credentials out of every message savepoint produces. Backends pass the
// secrets they were configured with; the patterns catch the ones that travel in
// URLs and connection strings (SAS `sig=`, `AccountKey=`, presigned S3 URLs, the
// `user:password@` part of any URL).

const SECRET_PATTERNS: readonly RegExp[] = [
  // A whole PEM private key (also JSON-escaped, with literal \n), not just its first line.
  /(-----BEGIN [A-Z ]*PRIVATE KEY-----)[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)/g,
  /((?:^|[?&;\s])(?:sig|signature|x-amz-signature|x-amz-credential|x-amz-security-token|x-goog-signature|x-goog-credential|se|sv|sp|skoid|sktid)=)[^&;\s"']+/gi,
  /((?:AccountKey|SharedAccessSignature|SharedAccessKey)=)[^;\s"']+/gi,
  /((?:aws_secret_access_key|secretAccessKey|accountKey|sessionToken|private_key|client_secret)["']?\s*[:=]\s*["']?)[^"',;\s}]+/gi,
  // A URL's userinfo (`http://user:password@host`), user name included: it is often a key id.
  // Only the authority is looked at (up to the first `/`), so `s3://bucket/a@b` keeps its key.
  /(\b[a-z][a-z0-9+.-]*:\/\/)[^/\s@"'<>?#]+(?=@)/gi,
];

/** Replaces each known secret and each secret-shaped substring with `***`. */
export function redact(text: string, secrets: readonly (string | undefined)[] = []): string {
  let out = text;
  for (const secret of secrets) {
    // Short strings would redact ordinary words; real keys are long.
    if (secret && secret.length >= 6) out = out.split(secret).join('***');
  }
  for (const pattern of SECRET_PATTERNS) out = out.replace(pattern, '$1***');
  return out;
}

/**
 * A credential-free stand-in for an SDK error, kept as `cause`. SDK errors carry the
 * raw request and response (headers, signed URLs), which must not reach a log.
 */
export function safeCause(error: unknown, secrets: readonly (string | undefined)[] = []): Error {
  const source = error as {
    name?: unknown;
    message?: unknown;
    code?: unknown;
    statusCode?: unknown;
    $metadata?: { httpStatusCode?: unknown };
  };
  const out = new Error(redact(String(source?.message ?? error), secrets));
  out.name = typeof source?.name === 'string' ? source.name : 'Error';
  const extra = out as Error & { code?: unknown; status?: unknown };
  if (source?.code !== undefined) extra.code = source.code;
  const status = source?.$metadata?.httpStatusCode ?? source?.statusCode;
  if (status !== undefined) extra.status = status;
  return out;
}
