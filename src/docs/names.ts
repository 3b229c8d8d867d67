/** Names the documents give routes: ids made of a path's words, kept unique in one document. */

/** The words of a path template joined by "_": `/shop/items/{id}` → `shop_items_id`. */
export function pathWords(template: string): string {
  return template.split(/[^A-Za-z0-9]+/).filter(Boolean).join("_");
}

/** `id`, or `id_2`, `id_3`, ... where it is taken; the name returned is taken from then on. */
export function uniqueName(id: string, taken: Set<string>): string {
  let candidate = id;
  for (let n = 2; taken.has(candidate); n++) candidate = `${id}_${n}`;
  taken.add(candidate);
  return candidate;
}
