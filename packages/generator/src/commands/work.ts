import { LOG_FORMATS, LOG_LEVELS } from '@sysattest/core/log';
import { Command, InvalidArgumentError, Option } from 'commander';
import { resolveWorkerSettings, WORKER_DEFAULTS, type WorkerCliOptions } from '../worker/config.js';
import { WorkerLog } from '../worker/log.js';
import { GenerationWorker } from '../worker/worker.js';

function integer(what: string, min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < min || n > max)
      throw new InvalidArgumentError(`${what} must be ${min}…${max}`);
    return n;
  };
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

export function registerWorkCommand(program: Command): void {
  program
    .command('work')
    .description(
      'run as a generation worker: claim jobs for the platforms from the server, build the images it lacks, ' +
        'generate and upload signed manifests, and sync each platform catalog on a schedule. Runs until ' +
        'SIGTERM/SIGINT (the first lets the current jobs finish, a second abandons them). Settings: options, ' +
        'then environment (SYSATTEST_SERVER, SYSATTEST_GENERATOR_TOKEN, SYSATTEST_GENERATOR_HOME, ' +
        'SYSATTEST_GENERATOR_KEY, SYSATTEST_KEY_PASSPHRASE), then the configuration file.',
    )
    .option(
      '--config <file>',
      'JSON configuration file (else $SYSATTEST_GENERATOR_CONFIG); unknown keys are refused',
    )
    .option(
      '--server <url>',
      'the server, e.g. http://127.0.0.1:8080 (else $SYSATTEST_SERVER or the config file)',
    )
    .option(
      '--token <token>',
      'generator token (visible in ps: prefer --token-file or $SYSATTEST_GENERATOR_TOKEN)',
    )
    .option('--token-file <file>', 'file holding the generator token')
    .option(
      '--platform <id>',
      'a platform to serve, e.g. debian/bookworm/amd64, fedora/41/x86_64, alpine/3.20/x86_64; repeatable ' +
        '(default: the config file, else this host)',
      collect,
    )
    .option(
      '--catalog-interval <duration>',
      `how often each platform catalog is synced (30m, 6h, 1d) or "off" (default ${WORKER_DEFAULTS.catalogInterval})`,
    )
    .option(
      '--no-refresh',
      'sync catalogs from the image as it is, without refreshing first (apt: image refresh with apt-get update + ' +
        'dist-upgrade; dnf/apk: dnf makecache --refresh / apk update in the catalog container)',
    )
    .option(
      '--concurrency <n>',
      `containers at once (default ${WORKER_DEFAULTS.concurrency})`,
      integer('--concurrency', 1, 64),
    )
    .option(
      '--batch-size <n>',
      `packages installed per container (default ${WORKER_DEFAULTS.batchSize})`,
      integer('--batch-size', 1, 1000),
    )
    .option(
      '--apt-cache-max <size>',
      `largest size of each Debian platform's shared download cache; the least recently used .debs ` +
        `are deleted past it, between batches (e.g. 5G, or off; default ${WORKER_DEFAULTS.aptCacheMax})`,
    )
    .option(
      '--lease-seconds <n>',
      `lease asked for each job; heartbeats renew it (default ${WORKER_DEFAULTS.leaseSeconds})`,
      integer('--lease-seconds', 3, 86_400),
    )
    .option(
      '--poll-interval <duration>',
      `wait between claims when idle (default ${WORKER_DEFAULTS.pollInterval})`,
    )
    .option(
      '--key <file>',
      'signing key (default: $SYSATTEST_GENERATOR_KEY, the config file, or the generator home)',
    )
    .option('--passphrase-file <file>', 'file holding the key passphrase (else $SYSATTEST_KEY_PASSPHRASE)')
    .option('--network <name>', 'podman network for the containers')
    .option('--worker-name <name>', 'names this worker in leases and logs (default: the host name)')
    .addOption(
      new Option(
        '--log-format <format>',
        'log lines on stderr: json (one object per line), human, or auto: human on a terminal, else JSON (default auto)',
      )
        .choices(LOG_FORMATS)
        .env('SYSATTEST_LOG_FORMAT'),
    )
    .addOption(
      new Option('--log-level <level>', 'least level logged (default info)')
        .choices(LOG_LEVELS)
        .env('SYSATTEST_LOG_LEVEL'),
    )
    .option(
      '--exit-when-idle',
      'exit once catalogs are synced and no job is left to claim (for scripts and timers)',
    )
    .action(async (opts: WorkerCliOptions) => {
      const settings = resolveWorkerSettings(opts);
      const log = new WorkerLog(settings.logFormat, undefined, settings.logLevel);
      const worker = new GenerationWorker(settings, log);
      const onSignal = (sig: NodeJS.Signals) => {
        if (worker.requestStop(sig)) {
          log.error(
            'forced-exit',
            `${sig}: quitting now; leftover containers are removed by the next worker`,
          );
          process.exit(130);
        }
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      try {
        const summary = await worker.run();
        if (settings.exitWhenIdle && summary.jobsFailed > 0) process.exitCode = 1;
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });
}
