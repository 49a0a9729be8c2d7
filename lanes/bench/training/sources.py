"""The repositories the type model is trained on, with their licences.

Only commit subject lines are read (no code). Licences were read from each repository's
licence file. ``vuejs/core`` and ``vitejs/vite`` are never trained on: they make up the dev
evaluation set (``lanes bench classify``). :func:`folds` groups the repositories for the
held-out-by-repository evaluation: each fold is tested by a model trained on the others.
"""

from __future__ import annotations

import hashlib

SOURCES: dict[str, str] = {
    "angular/angular-cli": "MIT",
    "apache/apisix": "Apache-2.0",
    "apache/echarts": "Apache-2.0",
    "apache/opendal": "Apache-2.0",
    "argoproj/argo-cd": "Apache-2.0",
    "argoproj/argo-workflows": "Apache-2.0",
    "aws-powertools/powertools-lambda-python": "MIT-0",
    "axios/axios": "MIT",
    "biomejs/biome": "MIT",
    "casdoor/casdoor": "Apache-2.0",
    "cloudwego/kitex": "Apache-2.0",
    "commitizen-tools/commitizen": "MIT",
    "conventional-changelog/commitlint": "MIT",
    "deepset-ai/haystack": "Apache-2.0",
    "discordjs/discord.js": "Apache-2.0",
    "electron-userland/electron-builder": "MIT",
    "electron/electron": "MIT",
    "eslint/eslint": "MIT",
    "excalidraw/excalidraw": "MIT",
    "fastify/fastify": "MIT",
    "folke/lazy.nvim": "Apache-2.0",
    "getsentry/sentry-javascript": "MIT",
    "getsentry/sentry-python": "MIT",
    "go-kratos/kratos": "MIT",
    "googleapis/python-bigquery": "Apache-2.0",
    "googleapis/release-please": "Apache-2.0",
    "goreleaser/goreleaser": "MIT",
    "GreptimeTeam/greptimedb": "Apache-2.0",
    "honojs/hono": "MIT",
    "hoppscotch/hoppscotch": "MIT",
    "iamkun/dayjs": "MIT",
    "influxdata/telegraf": "MIT",
    "ionic-team/capacitor": "MIT",
    "ionic-team/stencil": "MIT",
    "jenkins-x/jx": "Apache-2.0",
    "jhipster/generator-jhipster": "Apache-2.0",
    "karma-runner/karma": "MIT",
    "Kong/kong": "Apache-2.0",
    "lancedb/lance": "Apache-2.0",
    "lerna/lerna": "MIT",
    "litestar-org/litestar": "MIT",
    "medusajs/medusa": "MIT",
    "mermaid-js/mermaid": "MIT",
    "microsoft/playwright": "Apache-2.0",
    "mikro-orm/mikro-orm": "MIT",
    "ngrx/platform": "MIT",
    "nodejs/undici": "MIT",
    "novuhq/novu": "MIT",
    "numpy/numpy": "BSD-3-Clause",
    "nuxt/nuxt": "MIT",
    "open-telemetry/opentelemetry-js": "Apache-2.0",
    "open-telemetry/opentelemetry-js-contrib": "Apache-2.0",
    "openai/openai-python": "Apache-2.0",
    "ory/kratos": "Apache-2.0",
    "oxc-project/oxc": "MIT",
    "payloadcms/payload": "MIT",
    "pdm-project/pdm": "MIT",
    "pnpm/pnpm": "MIT",
    "pola-rs/polars": "MIT",
    "prefix-dev/pixi": "BSD-3-Clause",
    "prisma/prisma": "Apache-2.0",
    "quasarframework/quasar": "MIT",
    "risingwavelabs/risingwave": "Apache-2.0",
    "rollup/rollup": "MIT",
    "scipy/scipy": "BSD-3-Clause",
    "semantic-release/semantic-release": "MIT",
    "sequelize/sequelize": "MIT",
    "socketio/socket.io": "MIT",
    "spinnaker/deck": "Apache-2.0",
    "starship/starship": "ISC",
    "statsmodels/statsmodels": "BSD-3-Clause",
    "TanStack/query": "MIT",
    "TanStack/router": "MIT",
    "tauri-apps/tauri": "MIT OR Apache-2.0",
    "terraform-aws-modules/terraform-aws-eks": "Apache-2.0",
    "trpc/trpc": "MIT",
    "tusen-ai/naive-ui": "MIT",
    "typeorm/typeorm": "MIT",
    "typescript-eslint/typescript-eslint": "MIT",
    "umijs/umi": "MIT",
    "unjs/nitro": "MIT",
    "unocss/unocss": "MIT",
    "videojs/video.js": "Apache-2.0",
    "vitest-dev/vitest": "MIT",
    "vuetifyjs/vuetify": "MIT",
    "vueuse/vueuse": "MIT",
    "youzan/vant": "MIT",
}
"""``owner/name`` -> SPDX licence of the repository."""

EXCLUDED = frozenset({"vuejs/core", "vitejs/vite"})
"""The dev evaluation set's repositories: never trained on."""

FOLD_COUNT = 4


def folds(repos: list[str] | None = None, count: int = FOLD_COUNT) -> list[list[str]]:
    """``repos`` (default: every source) in ``count`` groups, by SHA-256 of the name: a
    fixed split that nobody chose by hand."""
    names = sorted(SOURCES if repos is None else repos, key=_digest)
    return [names[i::count] for i in range(count)]


def _digest(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()
