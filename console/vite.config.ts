// The console is served by `custody serve` under /console/ from files embedded in the binary
// (cmake/console.cmake). No inline script or style (the CSP forbids them), no CDN, hashed asset
// names (served with a long cache), index.html never cached.
import { defineConfig } from 'vite';

export default defineConfig({
  base: '/console/',
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: {
    target: 'es2022',
    // The CSP has no 'unsafe-inline': the module-preload polyfill would be fine (it is bundled),
    // but modern browsers do not need it.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    reportCompressedSize: false,
    sourcemap: false,
  },
});
