// `model.save('s3://bucket/models/m1')` and `tf.loadLayersModel('s3://…/model.json')`
// through any savepoint store, in TensorFlow.js's own model format: a `model.json`
// (topology, training config and weights manifest) beside one binary weights file, so
// the folder also loads with TensorFlow.js's own handlers once copied to disk or served
// over HTTP. The weights are written first and `model.json` last, under a name that
// carries the hash of their bytes and a token of this save: a reader never sees a
// `model.json` whose weights are missing or belong to another save.
//
// Under concurrency (several saves to one folder, loads racing them), safe by these rules:
// - every save writes a weights file no other save names (the token), and its
//   `model.json` names only that file;
// - a save deletes only what the `model.json` it replaced named, after its own landed, and
//   only weights files savepoint names (`weights-<hash>[-<token>].bin`), never what a
//   foreign `model.json` named: once a `model.json` has been replaced it is never current
//   again (no save writes it twice), so no current `model.json` can name what is deleted;
// - a save whose `model.json` was replaced by the time it landed deletes its own weights;
//   a save that loses a race after that check may leave its weights file behind, never
//   one a `model.json` names;
// - a load that finds its weights gone (a newer save replaced them between its two
//   reads) reads `model.json` again and loads the newer model.
import { createHash, randomBytes } from 'node:crypto';
import {
  type BackendArgs,
  ConfigError,
  CorruptCheckpointError,
  getBackend,
  isNotFound,
  registeredBackends,
  type StorageBackend,
} from '@savepoint/core';
import * as tf from '@tensorflow/tfjs';

export const MODEL_JSON = 'model.json';
/**
 * The bound on a `model.json`, as core bounds a safetensors header (100 MB): it holds the
 * topology and the weights manifest, never the weights, and a hostile one must not make
 * a reader allocate more.
 */
export const MAX_MODEL_JSON_BYTES = 100_000_000;
/**
 * `weights-<first 16 hex digits of the SHA-256 of the bytes>-<8 hex digits of this save>.bin`,
 * the name `save` gives the weights (before 0.2, without the token: still read and removed).
 */
const HASHED_WEIGHTS = /^weights-([0-9a-f]{16})(?:-[0-9a-f]{8})?\.bin$/;
/** How many times a load reads `model.json` again when saves keep replacing the weights it named. */
const LOAD_ATTEMPTS = 5;

/**
 * The weights file name for `weights`: their hash, so a reader can check them, and a
 * random token, so two saves of the same bytes never share (and delete) one file.
 */
function weightsFileName(weights: Uint8Array): string {
  const hash = createHash('sha256').update(weights).digest('hex').slice(0, 16);
  return `weights-${hash}-${randomBytes(4).toString('hex')}.bin`;
}

export interface SavepointIOOptions {
  /** A built store; otherwise the registry builds one for the URL from `backendArgs`. */
  backend?: StorageBackend;
  backendArgs?: BackendArgs;
}

/** The model's folder and its `model.json`, from a URL naming either. */
function locate(store: StorageBackend, url: string): { dir: string; modelJson: string } {
  const trimmed = url.replace(/\/+$/, '');
  if (trimmed.endsWith('.json')) return { dir: trimmed.slice(0, trimmed.lastIndexOf('/')), modelJson: trimmed };
  return { dir: trimmed, modelJson: store.joinPath(trimmed, MODEL_JSON) };
}

/** One `ArrayBuffer` from TensorFlow.js's weight data (one buffer or several). */
function joinWeightData(data: tf.io.WeightData | undefined): ArrayBuffer {
  if (data === undefined) return new ArrayBuffer(0);
  return tf.io.CompositeArrayBuffer.join(data);
}

/**
 * A TensorFlow.js IO handler that saves to and loads from `url` (a folder, or the
 * `model.json` in it) through a savepoint store.
 */
export function savepointIO(url: string, options: SavepointIOOptions = {}): tf.io.IOHandler {
  const store = options.backend ?? getBackend(url, options.backendArgs ?? {});
  const { dir, modelJson } = locate(store, url);
  return {
    async save(artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
      if (artifacts.modelTopology instanceof ArrayBuffer) {
        throw new ConfigError('savepoint saves models whose topology is JSON (layers models and graph models in JSON form)', {
          option: 'model',
        });
      }
      const weights = new Uint8Array(joinWeightData(artifacts.weightData));
      const weightsName = weightsFileName(weights);
      const previous = await readModelJson(store, modelJson).catch(() => undefined);
      await store.put(store.joinPath(dir, weightsName), weights);
      const json: Record<string, unknown> = {
        modelTopology: artifacts.modelTopology,
        format: artifacts.format,
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy,
        weightsManifest: [{ paths: [weightsName], weights: artifacts.weightSpecs ?? [] }],
      };
      if (artifacts.trainingConfig) json.trainingConfig = artifacts.trainingConfig;
      if (artifacts.signature) json.signature = artifacts.signature;
      if (artifacts.userDefinedMetadata) json.userDefinedMetadata = artifacts.userDefinedMetadata;
      if (artifacts.modelInitializer) json.modelInitializer = artifacts.modelInitializer;
      if (artifacts.initializerSignature) json.initializerSignature = artifacts.initializerSignature;
      // model.json last: until it lands, readers see the previous model whole.
      await store.put(modelJson, JSON.stringify(json), { contentType: 'application/json' });
      // Then the weights the replaced model.json named go: only files savepoint names, so a
      // foreign model.json (TensorFlow.js's own `group1-shard1of1.bin`, any other file) costs nothing.
      for (const path of weightPaths(previous)) {
        if (path !== weightsName && HASHED_WEIGHTS.test(path)) await store.remove(store.joinPath(dir, path));
      }
      // A concurrent save replaced this one's model.json already: nothing will name these weights again.
      const current = await readModelJson(store, modelJson).catch(() => undefined);
      if (current && !weightPaths(current).includes(weightsName)) await store.remove(store.joinPath(dir, weightsName));
      return {
        modelArtifactsInfo: {
          dateSaved: new Date(),
          modelTopologyType: 'JSON',
          modelTopologyBytes: JSON.stringify(artifacts.modelTopology ?? null).length,
          weightSpecsBytes: JSON.stringify(artifacts.weightSpecs ?? []).length,
          weightDataBytes: weights.byteLength,
        },
      };
    },

    async load(): Promise<tf.io.ModelArtifacts> {
      for (let attempt = 1; ; attempt++) {
        const json = await readModelJson(store, modelJson);
        try {
          return await loadArtifacts(json);
        } catch (error) {
          // A weights file gone means a newer save replaced this model.json since it was read.
          if (!isNotFound(error) || attempt >= LOAD_ATTEMPTS) throw error;
          const now = await readModelJson(store, modelJson);
          if (JSON.stringify(weightPaths(now)) === JSON.stringify(weightPaths(json))) throw error;
        }
      }
    },
  };

  function loadArtifacts(json: Record<string, unknown>): Promise<tf.io.ModelArtifacts> {
    return tf.io.getModelArtifactsForJSON(json as unknown as tf.io.ModelJSON, async (manifest) => {
      const specs: tf.io.WeightsManifestEntry[] = [];
      const buffers: ArrayBuffer[] = [];
      const corrupt = (what: string) => new CorruptCheckpointError(`${modelJson} ${what}`, { backend: store.name });
      if (!Array.isArray(manifest)) throw corrupt('has a weightsManifest that is not a list');
      const seen = new Set<string>();
      for (const group of manifest) {
        if (!Array.isArray(group?.paths) || !Array.isArray(group?.weights)) {
          throw corrupt('has a weightsManifest group without its paths and weights lists');
        }
        specs.push(...group.weights);
        for (const path of group.paths as unknown[]) {
          if (typeof path !== 'string') throw corrupt(`names a weights file that is not a string (${typeof path})`);
          // A stranger's model.json could name "../../secrets": only files beside it are read.
          if (!isPlainFileName(path)) throw corrupt(`names weights file ${JSON.stringify(path)} outside its folder`);
          // One file listed many times would be read, and held, as many times.
          if (seen.has(path)) throw corrupt(`lists weights file ${JSON.stringify(path)} twice`);
          seen.add(path);
          const bytes = await store.get(store.joinPath(dir, path));
          checkWeightsName(store, store.joinPath(dir, path), path, bytes);
          buffers.push(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);
        }
      }
      return [specs, tf.io.CompositeArrayBuffer.join(buffers)];
    });
  }
}

/**
 * A weights file whose name carries a hash (every one `save` writes) must hold the bytes
 * that give it: a flipped byte, or another model's weights under this name, is refused.
 * A name without one (TensorFlow.js's own `group1-shard1of1.bin`) has nothing to check.
 */
function checkWeightsName(store: StorageBackend, fullPath: string, name: string, bytes: Uint8Array): void {
  const carried = HASHED_WEIGHTS.exec(name)?.[1];
  if (carried === undefined) return;
  const actual = createHash('sha256').update(bytes).digest('hex').slice(0, 16);
  if (actual !== carried) {
    throw new CorruptCheckpointError(
      `${fullPath}: its bytes do not match the SHA-256 its name carries (${carried}…, the bytes give ${actual}…): the file was changed, damaged or replaced after it was written`,
      { backend: store.name },
    );
  }
}

function isPlainFileName(path: string): boolean {
  return path.length > 0 && !/[/\\]/.test(path) && path !== '.' && path !== '..';
}

function weightPaths(json: Record<string, unknown> | undefined): string[] {
  const manifest = json?.weightsManifest;
  if (!Array.isArray(manifest)) return [];
  return manifest.flatMap((group) =>
    Array.isArray(group?.paths) ? group.paths.filter((p: unknown) => typeof p === 'string') : [],
  );
}

async function readModelJson(store: StorageBackend, path: string): Promise<Record<string, unknown>> {
  // One byte past the bound: reading more is never needed to refuse it.
  const bytes = await store.get(path, { range: { start: 0, end: MAX_MODEL_JSON_BYTES + 1 } });
  if (bytes.byteLength > MAX_MODEL_JSON_BYTES) {
    throw new CorruptCheckpointError(`${path} is over the ${MAX_MODEL_JSON_BYTES}-byte bound of a model.json`, {
      backend: store.name,
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(bytes));
  } catch (error) {
    throw new CorruptCheckpointError(`${path} is not valid JSON`, { backend: store.name, cause: error });
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json) || !('modelTopology' in json)) {
    throw new CorruptCheckpointError(`${path} is not a TensorFlow.js model.json (no modelTopology)`, { backend: store.name });
  }
  return json as Record<string, unknown>;
}

export interface RegisterRoutersOptions extends SavepointIOOptions {
  /**
   * URL schemes to route (default: every scheme in the savepoint registry except `file`,
   * which @tensorflow/tfjs-node serves itself; pass `['file', ...]` to route it too).
   */
  schemes?: readonly string[];
}

let registered: Set<string> | undefined;

/**
 * Routes `model.save(url)` and `tf.loadLayersModel(url)` for store URLs through savepoint.
 * Call it after registering the backends (`registerS3Backend()`, ...). Calling it again
 * adds schemes; a scheme is routed once.
 */
export function registerSavepointRouters(options: RegisterRoutersOptions = {}): readonly string[] {
  const schemes =
    options.schemes ??
    registeredBackends().flatMap((b) => b.schemes.filter((s) => s !== 'file' && s !== 'http' && s !== 'https'));
  for (const scheme of schemes) {
    if (!/^[a-z][a-z0-9+.-]*$/.test(scheme)) {
      throw new ConfigError(`option "schemes" got ${JSON.stringify(scheme)}; accepted: URI schemes such as "s3"`, {
        option: 'schemes',
      });
    }
  }
  registered ??= new Set();
  const added = schemes.filter((s) => !registered?.has(s));
  for (const scheme of added) {
    registered.add(scheme);
    // TensorFlow.js asks every router and uses the one that answers (null means "not mine").
    const router = ((url: string | string[]) => {
      if (typeof url !== 'string' || !url.startsWith(`${scheme}://`)) return null;
      return savepointIO(url, options);
    }) as unknown as Parameters<typeof tf.io.registerSaveRouter>[0];
    tf.io.registerSaveRouter(router);
    tf.io.registerLoadRouter(router);
  }
  return [...registered];
}
