import { z } from 'zod';
import { PROTOCOL_LIMITS, packageField, platformField, timeField } from './fields.js';
import { documentedAs, unchecked } from './json-schema.js';

export const JOB_STATES = ['pending', 'running', 'done', 'dead'] as const;
export const JOB_REASONS = ['client-request', 'tracked', 'operator'] as const;
export const jobStateSchema = z.enum(JOB_STATES);

const workerId = () => z.string().min(1).max(PROTOCOL_LIMITS.workerIdLength);

// --- requests -------------------------------------------------------------------------------

/** GET /v1/jobs: id order, paginated by afterId. */
export const jobListQuerySchema = z.strictObject({
  platform: platformField().optional(),
  state: jobStateSchema.optional(),
  afterId: z
    .string()
    .regex(/^[0-9]{1,15}$/)
    .optional(),
  limit: z
    .string()
    .regex(/^[1-9][0-9]{0,4}$/)
    .optional(),
});

/** POST /v1/jobs/claim: lease up to `max` (default 1) due jobs for `leaseSeconds` (default 600). */
export const claimRequestSchema = z.strictObject({
  workerId: workerId(),
  platforms: z.array(platformField()).min(1).max(PROTOCOL_LIMITS.claimPlatforms),
  max: z.int().min(1).max(PROTOCOL_LIMITS.claimJobs).optional(),
  leaseSeconds: z.int().min(1).max(PROTOCOL_LIMITS.leaseSeconds).optional(),
});
export type ClaimRequest = z.infer<typeof claimRequestSchema>;

/** POST /v1/jobs/{id}/heartbeat and /complete. */
export const workerRequestSchema = z.strictObject({ workerId: workerId() });

/** POST /v1/jobs/{id}/fail. */
export const failRequestSchema = z.strictObject({
  workerId: workerId(),
  error: z.string().min(1).max(PROTOCOL_LIMITS.jobErrorLength),
});

// --- answers --------------------------------------------------------------------------------

/** A generation job; the worker depends on the fields it checks. */
export const generationJobSchema = z.object({
  id: z.int().positive(),
  platform: z.string().min(1).max(PROTOCOL_LIMITS.platformLength),
  targetPlatform: z.string().min(1).max(PROTOCOL_LIMITS.platformLength),
  name: packageField(),
  version: packageField(),
  arch: packageField(),
  reason: documentedAs(z.string().max(100), z.enum(JOB_REASONS)),
  state: documentedAs(z.string().max(20), jobStateSchema),
  attempts: z.int().nonnegative(),
  nextRunAt: unchecked(timeField(), { sentAlways: true }),
  leaseOwner: z.string().max(200).optional(),
  leaseExpiresAt: z.string().max(100).meta({ format: 'date-time' }).optional(),
  lastError: unchecked(z.string(), { sentAlways: false }),
  manifestId: unchecked(z.int(), { sentAlways: false }),
  createdAt: unchecked(timeField(), { sentAlways: true }),
  updatedAt: unchecked(timeField(), { sentAlways: true }),
  completedAt: unchecked(timeField(), { sentAlways: false }),
});
export type GenerationJobAnswer = z.infer<typeof generationJobSchema>;

/** The answer of heartbeat, complete, fail and requeue. */
export const jobAnswerSchema = z.object({ job: generationJobSchema });
/** The answer of GET /v1/jobs. */
export const jobListAnswerSchema = z.object({ jobs: z.array(generationJobSchema) });
/** The answer of POST /v1/jobs/claim. */
export const claimAnswerSchema = z.object({
  jobs: z.array(generationJobSchema).max(PROTOCOL_LIMITS.claimJobs),
});
