import { isAbsolute, resolve } from 'node:path';
import { mibToPages, PAGE_SIZE } from '@pagevisor/types';
import { ScenarioError, type Scenario } from '../scenario.js';
import { openGuestImage, type GuestImage } from './guest-image.js';
import { ImageError } from './image-error.js';

/**
 * `scenario` with every relative file image path resolved against `baseDir` (the directory of
 * the scenario file, so that a scenario and its images move together). Absolute paths and
 * synthetic images are left as they are; `scenario` itself is not changed.
 */
export function resolveImagePaths(scenario: Scenario, baseDir: string): Scenario {
  return {
    ...scenario,
    guests: scenario.guests.map((g) =>
      g.image.path === undefined || isAbsolute(g.image.path) ? g : { ...g, image: { ...g.image, path: resolve(baseDir, g.image.path) } },
    ),
  };
}

/**
 * Opens and validates every file image of `scenario` (paths as they are: resolve them first)
 * and checks that each fits its guest. Returns the images by guest spec index (undefined for
 * synthetic images).
 * @throws ScenarioError naming each guest whose image cannot be opened, is malformed (the
 *   {@link ImageError}'s message, with the offset) or spans more pages than the guest has.
 */
export function checkScenarioImages(scenario: Scenario): (GuestImage | undefined)[] {
  const issues: string[] = [];
  const images = scenario.guests.map((g, i) => {
    const path = g.image.path;
    if (path === undefined || g.image.format === undefined) return undefined;
    let image: GuestImage;
    try {
      image = openGuestImage(path, g.image.format);
    } catch (e) {
      if (e instanceof ImageError) issues.push(`guests[${i}].image.path: ${e.message}`);
      else issues.push(`guests[${i}].image.path: cannot read ${path}: ${(e as Error).message}`);
      return undefined;
    }
    const pages = mibToPages(g.memoryMiB);
    if (image.pages > pages) {
      const needMiB = Math.ceil((image.pages * PAGE_SIZE) / (1024 * 1024));
      issues.push(
        `guests[${i}].memoryMiB: ${g.memoryMiB} MiB (${pages} pages) cannot hold ${g.image.format} image ${path}, which spans ${image.pages} pages (gfns 0 .. ${image.pages - 1}); give at least ${needMiB}`,
      );
    }
    return image;
  });
  if (issues.length > 0) throw new ScenarioError(issues);
  return images;
}
