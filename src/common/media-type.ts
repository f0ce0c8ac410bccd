/**
 * The media type of a Content-Type value, without parameters, lower-cased
 * (`Audio/MPEG; charset=x` -> `audio/mpeg`); '' when there is none. Pure.
 */
export function mediaType(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0]!.trim().toLowerCase();
}
