/** A JSON media type: `application/json` or a `+json` one (`application/merge-patch+json`), parameters allowed. */
export const JSON_MEDIA_TYPE = /^application\/([\w.+-]+\+)?json\s*(;|$)/i;
