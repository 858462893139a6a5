// Copy the built files of the front-end libraries into the Python package, with the
// version in the file name, plus their licence files. Run: npm ci && npm run vendor
import { copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";

const out = "src/tokenledger/web/static/vendor";
const testOut = "tests/browser/vendor";
const files = [
  // [package, file inside the package, output name stem, extension, destination]
  ["htmx.org", "dist/htmx.min.js", "htmx", "js", out],
  ["cally", "dist/cally.js", "cally", "js", out],
  ["chart.js", "dist/chart.umd.min.js", "chart.umd", "js", out],
  ["swagger-ui-dist", "swagger-ui-bundle.js", "swagger-ui-bundle", "js", out],
  ["swagger-ui-dist", "swagger-ui.css", "swagger-ui", "css", out],
  ["axe-core", "axe.min.js", "axe", "js", testOut],
];

for (const dir of [out, testOut]) {
  mkdirSync(dir, { recursive: true });
  for (const name of readdirSync(dir)) rmSync(join(dir, name));
}
for (const [pkg, file, stem, ext, dest] of files) {
  const root = join("node_modules", pkg);
  const { version } = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
  copyFileSync(join(root, file), join(dest, `${stem}-${version}.${ext}`));
  const licence = readdirSync(root).find((name) => /^licen[sc]e/i.test(name));
  if (licence) copyFileSync(join(root, licence), join(dest, `${pkg}-${version}.LICENSE.txt`));
  console.log(`${pkg}@${version} -> ${dest}/${stem}-${version}.${ext}`);
}
