// interactive.py's page: draws the mesh with three.js, turns clicks into decoder requests, colours the answer.
// Colour of a vertex = p·segment + (1 − p)·base (the original's scheme); with Otsu on, p is first binarised at
// Otsu's threshold of the probabilities. Clicks are shown as small spheres (positive / negative colours).
// The click-aware switch asks for the click-aware decoder's answer (each click an edit of the segment where it is).
import * as THREE from 'three';
import { OrbitControls } from 'three/addons/controls/OrbitControls.js';

THREE.ColorManagement.enabled = false; // colours are the original's 0–255 values, passed through unchanged

const viewer = document.getElementById('viewer');
const $ = (id) => document.getElementById(id);

const state = {
  mesh: null,          // {vertices, faces, colours, ...} from /api/mesh
  clicks: [],          // [[vertex, positive], ...]
  undo: [], redo: [],  // earlier / undone click lists
  probability: null,   // Float32Array or null
  otsuThreshold: 0.5,
  segment: 1,
  request: 0,          // id of the latest prediction request (older answers are dropped)
  predictions: 0,      // answers shown so far
};

const renderer = new THREE.WebGLRenderer({ antialias: true, preserveDrawingBuffer: true });
renderer.outputColorSpace = THREE.LinearSRGBColorSpace;
renderer.setPixelRatio(window.devicePixelRatio);
viewer.appendChild(renderer.domElement);
const scene = new THREE.Scene();
scene.background = new THREE.Color(0xf4f4f4);
const camera = new THREE.PerspectiveCamera(60, 1, 0.01, 100);
camera.position.set(0, 0.6, 2.4);
const controls = new OrbitControls(camera, renderer.domElement);
scene.add(new THREE.AmbientLight(0xffffff, 1.2));
const light = new THREE.DirectionalLight(0xffffff, 1.6);
camera.add(light);
light.position.set(0.5, 1, 1);
scene.add(camera);
const markers = new THREE.Group();
scene.add(markers);
let surface = null;

function resize() {
  const width = viewer.clientWidth, height = viewer.clientHeight;
  renderer.setSize(width, height);
  camera.aspect = width / Math.max(height, 1);
  camera.updateProjectionMatrix();
}
window.addEventListener('resize', resize);

function message(text, ok = false) {
  $('message').textContent = text;
  $('message').className = ok ? 'ok' : '';
}

async function api(path, body) {
  const response = await fetch(path, body === undefined ? {} : {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  const payload = await response.json();
  if (!response.ok) throw new Error(payload.error || response.statusText);
  return payload;
}

function colourVertices() {
  const { base, segment } = state.mesh.colours;
  const colours = surface.geometry.attributes.color;
  const p = state.probability;
  const otsu = $('otsu').checked;
  for (let i = 0; i < state.mesh.num_vertices; i++) {
    let q = p ? p[i] : 0;
    if (p && otsu) q = q > state.otsuThreshold ? 1 : 0;
    colours.setXYZ(i, (q * segment[0] + (1 - q) * base[0]) / 255, (q * segment[1] + (1 - q) * base[1]) / 255,
                   (q * segment[2] + (1 - q) * base[2]) / 255);
  }
  colours.needsUpdate = true;
}

function drawMarkers() {
  markers.clear();
  const { positive, negative } = state.mesh.colours;
  const position = surface.geometry.attributes.position;
  for (const [vertex, isPositive] of state.clicks) {
    const c = isPositive ? positive : negative;
    const sphere = new THREE.Mesh(new THREE.SphereGeometry(0.015, 12, 8),
      new THREE.MeshBasicMaterial({ color: new THREE.Color(c[0] / 255, c[1] / 255, c[2] / 255) }));
    sphere.position.fromBufferAttribute(position, vertex);
    markers.add(sphere);
  }
  $('clicks').textContent = state.clicks.length
    ? 'clicks: ' + state.clicks.map(([v, p]) => (p ? '' : '−') + v).join(' ') : 'no clicks';
}

async function update() {
  drawMarkers();
  $('undo').disabled = state.undo.length === 0;
  $('redo').disabled = state.redo.length === 0;
  const id = ++state.request;
  if (state.clicks.length === 0) {
    state.probability = null;
    colourVertices();
    document.body.dataset.status = 'ready';
    document.body.dataset.predictions = String(++state.predictions);
    return;
  }
  document.body.dataset.status = 'busy';
  const started = performance.now();
  try {
    const answer = await api('/api/predict', { clicks: state.clicks, click_aware: $('click-aware').checked });
    if (id !== state.request) return; // a newer request is on its way
    state.probability = Float32Array.from(answer.probability);
    state.otsuThreshold = answer.otsu_threshold;
    colourVertices();
    $('latency').textContent = `decoder ${(1000 * answer.seconds).toFixed(0)} ms · round trip ` +
      `${(performance.now() - started).toFixed(0)} ms`;
    message('');
  } catch (error) {
    if (id === state.request) message(error.message);
  }
  if (id === state.request) {
    document.body.dataset.status = 'ready';
    document.body.dataset.predictions = String(++state.predictions);
  }
}

function change(clicks) {
  state.undo.push(state.clicks);
  state.redo = [];
  state.clicks = clicks;
  update();
}

function addClick(vertex, positive) {
  const single = $('mode-single').checked;
  if (!single && state.clicks.length && state.clicks[state.clicks.length - 1][0] === vertex) return; // as the original
  if (!positive && (single || state.clicks.length === 0)) {
    message('the first click must be positive');
    return;
  }
  change(single ? [[vertex, true]] : [...state.clicks, [vertex, positive]]);
}

function undo() {
  if (!state.undo.length) return;
  state.redo.push(state.clicks);
  state.clicks = state.undo.pop();
  update();
}

function redo() {
  if (!state.redo.length) return;
  state.undo.push(state.clicks);
  state.clicks = state.redo.pop();
  update();
}

// a click (not a drag) on the surface picks the corner of the hit face nearest to the hit point
const raycaster = new THREE.Raycaster();
let pressed = null;
renderer.domElement.addEventListener('pointerdown', (event) => { pressed = [event.clientX, event.clientY]; });
renderer.domElement.addEventListener('pointerup', (event) => {
  if (!pressed || Math.hypot(event.clientX - pressed[0], event.clientY - pressed[1]) > 4 || !surface) return;
  const vertex = pickVertex(event.clientX, event.clientY);
  if (vertex !== null) addClick(vertex, !(event.shiftKey || $('sign-negative').checked));
});

function pickVertex(clientX, clientY) {
  const rect = renderer.domElement.getBoundingClientRect();
  const pointer = new THREE.Vector2(((clientX - rect.left) / rect.width) * 2 - 1,
                                    -((clientY - rect.top) / rect.height) * 2 + 1);
  raycaster.setFromCamera(pointer, camera);
  const hit = raycaster.intersectObject(surface, false)[0];
  if (!hit) return null;
  const position = surface.geometry.attributes.position;
  let best = null, bestDistance = Infinity;
  for (const corner of [hit.face.a, hit.face.b, hit.face.c]) {
    const distance = new THREE.Vector3().fromBufferAttribute(position, corner).distanceTo(hit.point);
    if (distance < bestDistance) { best = corner; bestDistance = distance; }
  }
  return best;
}

async function exportSegment() {
  if (!state.clicks.length) { message('nothing to export: click on the mesh first'); return; }
  document.body.dataset.status = 'busy';
  try {
    const answer = await api('/api/export', { clicks: state.clicks, otsu: $('otsu').checked,
                                             click_aware: $('click-aware').checked,
                                             segment: state.segment, format: $('format').value });
    message(`segment ${state.segment}: ${answer.selected_faces} faces\n` +
            Object.values(answer.paths).join('\n'), true);
    document.body.dataset.exported = String(state.segment);
  } catch (error) {
    message(error.message);
  }
  document.body.dataset.status = 'ready';
}

function nextSegment() {
  state.segment += 1;
  $('segment').textContent = String(state.segment);
  state.undo = []; state.redo = []; state.clicks = [];
  update();
}

$('undo').addEventListener('click', undo);
$('redo').addEventListener('click', redo);
$('reset').addEventListener('click', () => { if (state.clicks.length) change([]); });
$('otsu').addEventListener('change', () => { if (state.probability) colourVertices(); });
$('click-aware').addEventListener('change', update);
$('export').addEventListener('click', exportSegment);
$('next-segment').addEventListener('click', nextSegment);
window.addEventListener('keydown', (event) => {
  if ((event.ctrlKey || event.metaKey) && event.key === 'z') undo();
  if ((event.ctrlKey || event.metaKey) && event.key === 'y') redo();
});

function animate() {
  controls.update();
  renderer.render(scene, camera);
  requestAnimationFrame(animate);
}

async function start() {
  try {
    state.mesh = await api('/api/mesh');
  } catch (error) {
    message('could not load the mesh: ' + error.message);
    document.body.dataset.status = 'error';
    return;
  }
  $('mesh-name').textContent = `${state.mesh.name} (${state.mesh.num_vertices} vertices)`;
  $('click-aware').checked = Boolean(state.mesh.click_aware);
  const geometry = new THREE.BufferGeometry();
  geometry.setAttribute('position', new THREE.Float32BufferAttribute(state.mesh.vertices, 3));
  geometry.setAttribute('color', new THREE.Float32BufferAttribute(new Float32Array(3 * state.mesh.num_vertices), 3));
  geometry.setIndex(state.mesh.faces);
  geometry.computeVertexNormals();
  surface = new THREE.Mesh(geometry, new THREE.MeshLambertMaterial({ vertexColors: true }));
  scene.add(surface);
  resize();
  update();
  animate();
}

// for scripted use (tests, automation): the state and where a vertex appears on the screen
window.iseg = {
  state,
  projectVertex(vertex) {
    const rect = renderer.domElement.getBoundingClientRect();
    const point = new THREE.Vector3().fromBufferAttribute(surface.geometry.attributes.position, vertex);
    point.project(camera);
    return { x: rect.left + (point.x + 1) / 2 * rect.width, y: rect.top + (1 - point.y) / 2 * rect.height };
  },
  pickVertex,
  lookFrom(x, y, z) { camera.position.set(x, y, z); controls.target.set(0, 0, 0); controls.update(); },
};

start();
