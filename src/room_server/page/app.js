// roomagent development room server page: a plain-JS RTCPeer dialect client.
// Log in, see who is online, call a device, see and hear it, mute, hang up.
// Query parameters: ?codec=h264|vp8 puts that codec first for the video this page sends.
'use strict';

const BASE = document.querySelector('meta[name=roomagent-base]').content;
const PARAMS = new URLSearchParams(location.search);
const CODEC = (PARAMS.get('codec') || '').toLowerCase();
// `?send=none`: join calls receiving only (no camera or microphone asked for).
const SEND = PARAMS.get('send') !== 'none';

const $ = (id) => document.getElementById(id);
const logBox = $('log');
function log(...args) {
  const line = args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' ');
  logBox.textContent += new Date().toISOString().slice(11, 23) + ' ' + line + '\n';
  logBox.scrollTop = logBox.scrollHeight;
  console.log(line);
}

let sid = null;
let me = null;            // User bean
let ws = null;
let reqSeq = 0;
const waiting = new Map(); // reqId -> resolve
let call = null;          // {dir:'out'|'in', state, peer, peerDevice, roomId, roomType}
let room = null;          // {id, myClient, members: Map<clientId, Client>, host}
const peers = new Map();  // clientId -> {pc, pending: [], tile}
let local = null;         // MediaStream
let micMuted = false;
let cameraOff = false;
let onlineTimer = null;

function setStatus(text) { $('status').textContent = text; }
function setTitle(text) { $('call-title').textContent = text; }

function send(module, method, body) {
  const reqId = String(++reqSeq);
  const frame = Object.assign({ module, method, reqId }, body || {});
  ws.send(JSON.stringify(frame));
  return new Promise((resolve) => waiting.set(reqId, resolve));
}

async function login(name, password) {
  const form = new URLSearchParams();
  form.set('params', JSON.stringify({ method: 'login', name, password }));
  const r = await fetch(BASE + '/account', { method: 'POST', body: form });
  const d = await r.json();
  if (d.result !== 0) throw new Error(d.message || ('login failed, result ' + d.result));
  sid = d.SID;
  me = d.user;
  await connect();
}

function connect() {
  return new Promise((resolve, reject) => {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    ws = new WebSocket(`${scheme}//${location.host}${BASE}/socket?SID=${encodeURIComponent(sid)}`);
    ws.onopen = async () => {
      const r = await send('call', 'doRegister', { SID: sid, userId: me.id, deviceType: 'webphone' });
      if (r.result !== 0) { reject(new Error(r.message || 'register failed')); return; }
      setStatus(`logged in as ${me.name} (user ${me.id})`);
      $('login-box').style.display = 'none';
      $('join').disabled = false;
      refreshOnline();
      onlineTimer = setInterval(refreshOnline, 2000);
      resolve();
    };
    ws.onerror = () => reject(new Error('socket error'));
    ws.onclose = () => { setStatus('disconnected'); clearInterval(onlineTimer); };
    ws.onmessage = (ev) => onFrame(JSON.parse(ev.data));
  });
}

async function refreshOnline() {
  const r = await fetch(`${BASE}/online?SID=${encodeURIComponent(sid)}`);
  if (!r.ok) return;
  const d = await r.json();
  const ul = $('online');
  ul.innerHTML = '';
  for (const u of d.users) {
    if (u.id === me.id) continue;
    const li = document.createElement('li');
    li.dataset.user = u.id;
    li.innerHTML = `<span>${escapeHtml(u.name)} <span class="muted">${u.deviceType} · ${u.id}${u.roomId ? ' · in room ' + u.roomId : ''}</span></span>`;
    const b = document.createElement('button');
    b.textContent = 'Call';
    b.className = 'primary call';
    b.disabled = !!call;
    b.onclick = () => dial(u);
    li.appendChild(b);
    ul.appendChild(li);
  }
  if (!ul.children.length) ul.innerHTML = '<li class="muted">nobody else is online</li>';
}

function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
}

// ------------------------------------------------------------------ calls

async function dial(user) {
  if (call) return;
  call = { dir: 'out', state: 'dialing', peer: user.id, peerDevice: user.deviceType, roomType: 2 };
  setTitle(`Calling ${user.name}…`);
  const r = await send('room', 'newAppRoom', { name: `call from ${me.name}`, numberLimit: 16, roomtype: 2, userId: me.id });
  if (r.result !== 0) { endCall('could not create a room: ' + r.message); return; }
  call.roomId = r.roomId;
  const inv = await send('call', 'doInvite', {
    ownUserId: me.id, targetUserId: user.id, ownDeviceType: 'webphone',
    targetDeviceType: user.deviceType, type: 2, roomId: r.roomId,
  });
  if (inv.result === 1) endCall(`${user.name} is not online`);
  updateButtons();
}

function callEvent(event, extra) {
  return send('call', 'doEvent', Object.assign({
    ownUserId: me.id, targetUserId: call.peer, ownDeviceType: 'webphone',
    targetDeviceType: call.peerDevice, event,
  }, extra || {}));
}

async function onCall(m) {
  switch (m.method) {
    case 'doInvite':
      if (call || room) {
        send('call', 'doEvent', { ownUserId: me.id, targetUserId: m.ownUserId, targetDeviceType: m.ownDeviceType, event: 'onBusy' });
        return;
      }
      call = { dir: 'in', state: 'ringing', peer: m.ownUserId, peerDevice: m.ownDeviceType, roomId: m.roomId, roomType: m.type || 2 };
      callEvent('onRinging');
      $('incoming-text').textContent = `Incoming call from user ${m.ownUserId}`;
      $('incoming').style.display = 'block';
      break;
    case 'cancel':
      if (call && call.peer === m.ownUserId && call.state !== 'in') endCall('the caller cancelled');
      break;
    case 'doEvent':
      if (!call || call.peer !== m.ownUserId) return;
      if (m.event === 'onRinging') { call.state = 'ringing'; setTitle(`Ringing user ${m.ownUserId}…`); }
      if (m.event === 'onBusy') endCall(`user ${m.ownUserId} is busy`);
      if (m.event === 'onConnected' && call.dir === 'in') {
        await enterRoom(m.roomId || call.roomId, m.roomType || call.roomType);
      }
      break;
    case 'doAgree':
      if (call && call.dir === 'out' && call.peer === m.ownUserId) {
        await enterRoom(call.roomId, call.roomType);
        if (room) callEvent('onConnected', { roomId: room.id, roomType: call.roomType });
      }
      break;
    case 'reject':
      if (call && call.peer === m.ownUserId) endCall(`user ${m.ownUserId} declined`);
      break;
  }
}

async function answerIncoming() {
  if (!call || call.dir !== 'in') return;
  $('incoming').style.display = 'none';
  call.state = 'answering';
  await send('call', 'doAgree', { ownUserId: me.id, targetUserId: call.peer, targetDeviceType: call.peerDevice, type: call.roomType, roomId: call.roomId });
  setTitle('Answered; waiting for the caller to connect…');
}

function declineIncoming() {
  if (!call) return;
  send('call', 'reject', { ownUserId: me.id, targetUserId: call.peer, targetDeviceType: call.peerDevice });
  endCall('declined');
}

// ------------------------------------------------------------------ meeting

async function ensureLocal() {
  if (local) return local;
  if (!SEND) {
    local = new MediaStream();
    return local;
  }
  try {
    local = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 640, height: 360 } });
  } catch (e) {
    log('no camera/microphone:', String(e));
    local = new MediaStream();
  }
  addTile('local', local, 'me', true);
  return local;
}

async function enterRoom(roomId, roomType) {
  await ensureLocal();
  const r = await send('meeting', 'enter', { userId: me.id, roomId, roomType: roomType || 2, username: me.name });
  if (r.result !== 0) { endCall('could not enter the room: ' + r.message); return; }
  room = { id: r.room.id, myClient: r.client, members: new Map(), host: r.room.superModeId };
  if (call) call.state = 'in';
  setTitle(`In room ${room.id}`);
  for (const c of r.members) {
    room.members.set(c.id, c);
    await startOffer(c.id); // we entered later: we offer to everyone present
  }
  updateButtons();
}

function onMeeting(m) {
  if (!room || m.roomId !== room.id) return;
  switch (m.method) {
    case 'EnterRoom':
      if (m.result === 9) { leaveRoom('this account entered the room elsewhere', false); return; }
      room.members.set(m.client.id, m.client);
      closePeer(m.client.id); // it entered later and will offer
      log('entered:', m.client.name);
      break;
    case 'ExitRoom':
      room.members.delete(m.client.id);
      closePeer(m.client.id);
      log('left:', m.client.name);
      if (call && room.members.size === 0) leaveRoom('the other side left', true);
      break;
    case 'onFinish': leaveRoom('the meeting was finished', false); break;
    case 'tiren': if (m.userId === me.id) leaveRoom('removed by the host', true); break;
    case 'onMute': {
      const c = room.members.get(m.userId);
      if (c) c.isMuted = m.isMute;
      log(`user ${m.userId} ${m.isMute ? 'muted' : 'unmuted'}${m.super ? ' by the host' : ''}`);
      if (m.userId === me.id && m.super === 'fromSuper') setMic(m.isMute, false);
      break;
    }
    case 'onMuteAll': if (m.super === 'fromSuper') setMic(m.isMute, false); break;
    case 'onCompere': room.host = m.userId; break;
  }
  updateButtons();
}

async function leaveRoom(reason, sendExit) {
  if (room && sendExit) await send('meeting', 'exit', { roomId: room.id });
  endCall(reason);
}

function endCall(reason) {
  log('call ended:', reason);
  for (const id of [...peers.keys()]) closePeer(id);
  room = null;
  call = null;
  if (local) { local.getTracks().forEach((t) => t.stop()); local = null; }
  $('videos').innerHTML = '';
  $('incoming').style.display = 'none';
  setTitle('No call — ' + reason);
  micMuted = false; cameraOff = false;
  updateButtons();
}

async function hangup() {
  if (room) return leaveRoom('hung up', true);
  if (!call) return;
  if (call.dir === 'out') send('call', 'cancel', { ownUserId: me.id, targetUserId: call.peer, targetDeviceType: call.peerDevice });
  else send('call', 'reject', { ownUserId: me.id, targetUserId: call.peer, targetDeviceType: call.peerDevice });
  endCall('hung up');
}

function setMic(muted, announce) {
  micMuted = muted;
  if (local) local.getAudioTracks().forEach((t) => { t.enabled = !muted; });
  if (announce && room) send('meeting', 'muteMsg', { userId: me.id, roomId: room.id, isMute: muted });
  updateButtons();
}

function hostMute(muted) {
  if (!room) return;
  for (const id of room.members.keys()) {
    send('meeting', 'muteMsg', { userId: id, roomId: room.id, isMute: muted, super: 'fromSuper' });
  }
}

function updateButtons() {
  const inRoom = !!room;
  $('mute').disabled = !inRoom;
  $('mute').textContent = micMuted ? 'Unmute me' : 'Mute me';
  $('camera').disabled = !inRoom;
  $('camera').textContent = cameraOff ? 'Camera on' : 'Camera off';
  $('host-mute').disabled = !inRoom;
  $('host-unmute').disabled = !inRoom;
  $('hangup').disabled = !call && !room;
  $('quality').disabled = !inRoom;
  document.querySelectorAll('button.call').forEach((b) => { b.disabled = !!call || !!room; });
}

// ------------------------------------------------------------------ WebRTC

function addTile(id, stream, label, isLocal) {
  let tile = document.getElementById('tile-' + id);
  if (!tile) {
    tile = document.createElement('div');
    tile.className = 'tile';
    tile.id = 'tile-' + id;
    tile.innerHTML = '<video autoplay playsinline></video><span></span>';
    tile.querySelector('video').id = 'video_' + id;
    $('videos').appendChild(tile);
  }
  const v = tile.querySelector('video');
  v.muted = !!isLocal;
  v.srcObject = stream;
  tile.querySelector('span').textContent = label;
  return tile;
}

function preferCodec(pc) {
  if (!CODEC || !window.RTCRtpReceiver || !RTCRtpReceiver.getCapabilities) return;
  const caps = RTCRtpReceiver.getCapabilities('video');
  if (!caps) return;
  const wanted = caps.codecs.filter((c) => c.mimeType.toLowerCase() === 'video/' + CODEC);
  const rest = caps.codecs.filter((c) => c.mimeType.toLowerCase() !== 'video/' + CODEC);
  for (const t of pc.getTransceivers()) {
    const kind = t.receiver && t.receiver.track && t.receiver.track.kind;
    if (kind === 'video' && t.setCodecPreferences) {
      try { t.setCodecPreferences(wanted.concat(rest)); } catch (e) { log('codec preference failed:', String(e)); }
    }
  }
}

// After negotiation, send video with the preferred codec when the peer accepts it
// (RTCRtpEncodingParameters.codec): the offer's order would otherwise decide.
async function sendPreferredCodec(pc) {
  if (!CODEC) return;
  for (const sender of pc.getSenders()) {
    if (!sender.track || sender.track.kind !== 'video') continue;
    const params = sender.getParameters();
    const codec = (params.codecs || []).find((c) => c.mimeType.toLowerCase() === 'video/' + CODEC);
    if (!codec || !params.encodings || !params.encodings.length) {
      log('cannot send ' + CODEC + ': not negotiated');
      continue;
    }
    params.encodings.forEach((e) => { e.codec = codec; });
    try { await sender.setParameters(params); } catch (e) { log('setParameters failed:', String(e)); }
  }
}

function newPeer(clientId) {
  closePeer(clientId);
  const pc = new RTCPeerConnection({ iceServers: [], bundlePolicy: 'max-bundle' });
  const entry = { pc, pending: [], remote: new MediaStream(), remoteCandidates: [], created: Date.now() };
  peers.set(clientId, entry);
  pc.onicecandidate = (e) => {
    if (!room) return;
    const c = e.candidate;
    send('media', 'candidate', {
      roomId: room.id, toClientId: clientId,
      candidate: c ? c.candidate : '', sdpMLineIndex: c ? c.sdpMLineIndex : 0, sdpMid: c ? c.sdpMid : null,
    });
  };
  pc.ontrack = (e) => {
    entry.remote.addTrack(e.track);
    const c = room && room.members.get(clientId);
    addTile(clientId, entry.remote, c ? c.name || String(clientId) : String(clientId), false);
  };
  pc.onconnectionstatechange = () => log(`peer ${clientId}: ${pc.connectionState}`);
  return entry;
}

function closePeer(clientId) {
  const entry = peers.get(clientId);
  if (!entry) return;
  entry.pc.close();
  peers.delete(clientId);
  const tile = document.getElementById('tile-' + clientId);
  if (tile) tile.remove();
}

async function startOffer(clientId) {
  const entry = newPeer(clientId);
  const pc = entry.pc;
  for (const kind of ['audio', 'video']) {
    const track = local.getTracks().find((t) => t.kind === kind);
    pc.addTransceiver(track || kind, { direction: 'sendrecv', streams: [local] });
  }
  preferCodec(pc);
  const offer = await pc.createOffer();
  await pc.setLocalDescription(offer);
  send('media', 'offer', { roomId: room.id, toClientId: clientId, sdp: offer.sdp });
}

async function onMedia(m) {
  if (!room || m.roomId !== room.id) return;
  const from = m.fromClientId;
  if (m.method === 'offer') {
    const entry = newPeer(from);
    const pc = entry.pc;
    await pc.setRemoteDescription({ type: 'offer', sdp: m.sdp });
    // Answer on the offered transceivers so each m-line keeps its direction.
    for (const t of pc.getTransceivers()) {
      const kind = t.receiver.track.kind;
      const track = local && local.getTracks().find((x) => x.kind === kind);
      if (track) {
        await t.sender.replaceTrack(track);
        t.sender.setStreams && t.sender.setStreams(local);
        if (t.direction === 'recvonly' || t.direction === 'inactive') t.direction = 'sendrecv';
      }
    }
    preferCodec(pc);
    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    send('media', 'answer', { roomId: room.id, toClientId: from, sdp: answer.sdp });
    await sendPreferredCodec(pc);
    for (const c of entry.pending.splice(0)) await addCandidate(pc, c);
  } else if (m.method === 'answer') {
    const entry = peers.get(from);
    if (!entry) return;
    await entry.pc.setRemoteDescription({ type: 'answer', sdp: m.sdp });
    await sendPreferredCodec(entry.pc);
    for (const c of entry.pending.splice(0)) await addCandidate(entry.pc, c);
  } else if (m.method === 'candidate') {
    const entry = peers.get(from);
    if (!entry) return;
    if (m.candidate) entry.remoteCandidates.push(m.candidate);
    if (!entry.pc.remoteDescription) entry.pending.push(m);
    else await addCandidate(entry.pc, m);
  } else if (m.method === 'bye') {
    closePeer(from);
  } else if (m.method === 'quality') {
    // A viewer asks for a smaller layer of what we send it: scale our stream down for it.
    const entry = peers.get(from);
    if (!entry) return;
    const by = { 2: 1, 1: 2, 0: 4 }[m.sim] || 1;
    for (const sender of entry.pc.getSenders()) {
      if (!sender.track || sender.track.kind !== 'video') continue;
      const params = sender.getParameters();
      (params.encodings || []).forEach((e) => { e.scaleResolutionDownBy = by; });
      try { await sender.setParameters(params); } catch (e) { log('setParameters failed:', String(e)); }
    }
  }
}

// The SDK's switchVideoBySim: ask every participant whose video we receive for a quality
// layer (0 small, 1 medium, 2 large).
function switchVideoBySim(sim) {
  if (!room) return;
  for (const [id] of peers) switchVideoSimTo(id, sim);
}

// The SDK's switchVideoSimByDom: the same for the one participant a video element shows.
function switchVideoSimByDom(domId, sim) {
  const tile = document.getElementById(domId);
  const id = tile && tile.closest('.tile') && tile.closest('.tile').id.replace(/^tile-/, '');
  if (!id || !peers.has(Number(id))) throw new Error('no participant shown in ' + domId);
  switchVideoSimTo(Number(id), sim);
}

function switchVideoSimTo(clientId, sim) {
  log(`asking ${clientId} for the ${['small', 'medium', 'large'][sim]} layer`);
  send('media', 'quality', { roomId: room.id, toClientId: clientId, sim });
}

async function addCandidate(pc, m) {
  try {
    if (!m.candidate) await pc.addIceCandidate(null);
    else await pc.addIceCandidate({ candidate: m.candidate, sdpMLineIndex: m.sdpMLineIndex, sdpMid: m.sdpMid });
  } catch (e) {
    log('candidate refused:', String(e));
  }
}

// ------------------------------------------------------------------ frames

async function onFrame(m) {
  if (m.reqId && waiting.has(m.reqId)) {
    const resolve = waiting.get(m.reqId);
    waiting.delete(m.reqId);
    if (m.result !== 0) log(`${m.module}/${m.method} → result ${m.result}${m.message ? ': ' + m.message : ''}`);
    resolve(m);
    return;
  }
  try {
    if (m.module === 'call') await onCall(m);
    else if (m.module === 'meeting') onMeeting(m);
    else if (m.module === 'media') await onMedia(m);
  } catch (e) {
    log('error handling', m.module + '/' + m.method, String(e));
  }
  updateButtons();
}

// ------------------------------------------------------------------ test and automation hooks

window.roomagent = {
  state: () => ({
    loggedIn: !!me, userId: me && me.id, call: call && { ...call },
    roomId: room && room.id, members: room ? [...room.members.keys()] : [], micMuted,
  }),
  // Per remote participant: what arrived, as getStats() reports it.
  stats: async () => {
    const out = {};
    for (const [id, entry] of peers) {
      const s = { connection: entry.pc.connectionState, created: entry.created, video: null, audio: null, remoteCandidates: entry.remoteCandidates.slice() };
      const report = await entry.pc.getStats();
      const codecs = {};
      report.forEach((r) => { if (r.type === 'codec') codecs[r.id] = r.mimeType; });
      report.forEach((r) => {
        if (r.type === 'inbound-rtp' && r.kind === 'video') {
          s.video = {
            framesDecoded: r.framesDecoded || 0, packetsReceived: r.packetsReceived || 0,
            packetsLost: r.packetsLost || 0, bytesReceived: r.bytesReceived || 0,
            codec: codecs[r.codecId] || null, frameWidth: r.frameWidth || 0, frameHeight: r.frameHeight || 0,
            framesPerSecond: r.framesPerSecond || 0, freezeCount: r.freezeCount || 0,
            totalFreezesDuration: r.totalFreezesDuration || 0,
          };
        }
        if (r.type === 'inbound-rtp' && r.kind === 'audio') {
          s.audio = { packetsReceived: r.packetsReceived || 0, codec: codecs[r.codecId] || null };
        }
        if (r.type === 'outbound-rtp' && r.kind === 'video') {
          s.sentVideoCodec = codecs[r.codecId] || null;
          s.framesEncoded = r.framesEncoded || 0;
        }
      });
      out[id] = s;
    }
    return out;
  },
  // Per remote participant: how bright their picture is now (mean of R, G, B over a small
  // copy of the frame, 0-255), and its size.
  pictures: () => {
    const out = {};
    for (const [id] of peers) {
      const v = document.querySelector('#tile-' + id + ' video');
      if (!v || !v.videoWidth) continue;
      const c = document.createElement('canvas');
      c.width = 32; c.height = 18;
      const g = c.getContext('2d');
      g.drawImage(v, 0, 0, c.width, c.height);
      const d = g.getImageData(0, 0, c.width, c.height).data;
      let sum = 0, r = 0, gr = 0, b = 0;
      for (let i = 0; i < d.length; i += 4) { r += d[i]; gr += d[i + 1]; b += d[i + 2]; }
      const n = d.length / 4;
      sum = (r + gr + b) / 3 / n;
      out[id] = { brightness: sum, red: r / n, green: gr / n, blue: b / n, width: v.videoWidth, height: v.videoHeight };
    }
    return out;
  },
  login, dial: (userId) => dial({ id: userId, name: String(userId) }), hangup,
  switchVideoBySim, switchVideoSimByDom,
  join: async (id) => {
    call = { dir: 'join', state: 'entering', roomType: 2 };
    await enterRoom(id, 2);
  },
  hostMute: () => hostMute(true), hostUnmute: () => hostMute(false),
};

// ------------------------------------------------------------------ wiring

$('login-form').onsubmit = async (e) => {
  e.preventDefault();
  $('login-error').textContent = '';
  try {
    await login($('name').value, $('password').value);
  } catch (err) {
    $('login-error').textContent = String(err.message || err);
  }
};
$('accept').onclick = answerIncoming;
$('decline').onclick = declineIncoming;
$('hangup').onclick = hangup;
$('mute').onclick = () => setMic(!micMuted, true);
$('camera').onclick = () => {
  cameraOff = !cameraOff;
  if (local) local.getVideoTracks().forEach((t) => { t.enabled = !cameraOff; });
  if (room) send('meeting', 'updateVideo', { roomId: room.id, video: !cameraOff });
  updateButtons();
};
$('quality').onchange = () => switchVideoBySim(Number($('quality').value));
$('host-mute').onclick = () => hostMute(true);
$('host-unmute').onclick = () => hostMute(false);
$('join').onclick = async () => {
  const id = parseInt($('room-id').value, 10);
  if (!id || call || room) return;
  call = { dir: 'join', state: 'entering', roomType: 2 };
  await enterRoom(id, 2);
};
