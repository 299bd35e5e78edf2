// Keeps credentials out of every message savepoint produces. Backends pass the
// secrets they were configured with; the patterns catch the ones that travel in
// URLs and connection strings (SAS `sig=`, `AccountKey=`, presigned S3 URLs).

const SECRET_PATTERNS: readonly RegExp[] = [
  /((?:^|[?&;\s])(?:sig|signature|x-amz-signature|x-amz-credential|x-amz-security-token|x-goog-signature|x-goog-credential|se|sv|sp|skoid|sktid)=)[^&;\s"']+/gi,
  /((?:AccountKey|SharedAccessSignature|SharedAccessKey)=)[^;\s"']+/gi,
  /((?:aws_secret_access_key|secretAccessKey|accountKey|sessionToken|private_key|client_secret)["']?\s*[:=]\s*["']?)[^"',;\s}]+/gi,
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
