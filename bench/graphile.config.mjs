// PostGraphile 5, the reference for bench/interactions_vs_postgraphile.py: the Amber preset
// (PostGraphile's recommended defaults) over the benchmark database's public schema, read-only.
//
//   BENCH_PG_URL=postgres://... BENCH_PG_PORT=5678 \
//     node node_modules/postgraphile/dist/cli-run.js -C graphile.config.mjs
//
// Run it with NODE_ENV=production, as a deployment would: in development Grafast and
// Grafserv add checks and more detailed errors.
import { makePgService } from "postgraphile/adaptors/pg";
import { PostGraphileAmberPreset } from "postgraphile/presets/amber";

/** @type {GraphileConfig.Preset} */
const preset = {
  extends: [PostGraphileAmberPreset],
  // Read-only: the benchmark only queries. (Schema size does not change per-request work.)
  disablePlugins: ["PgMutationCreatePlugin", "PgMutationUpdateDeletePlugin"],
  pgServices: [
    makePgService({
      connectionString: process.env.BENCH_PG_URL,
      schemas: ["public"],
      // The same pool size as a `binocular serve` process (BINOCULAR_POOL_SIZE, 10).
      poolConfig: { max: Number(process.env.BENCH_PG_POOL_SIZE ?? 10) },
    }),
  ],
  grafserv: {
    host: "127.0.0.1",
    port: Number(process.env.BENCH_PG_PORT ?? 5678),
    graphqlPath: "/graphql",
    // Ruru (GraphiQL) at /: the harness waits for a 200 there before measuring.
    graphiql: true,
    graphiqlPath: "/",
    websockets: false,
  },
  grafast: {
    explain: false,
  },
};

export default preset;
